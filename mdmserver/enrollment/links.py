"""Where a device (or the person holding it) goes to enroll: the URL of an enrollment token,
and that URL as a QR code for a phone's camera (in a terminal, or as SVG in the console)."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import qrcode
import qrcode.image.svg


def enrollment_url(server_url: str, token: str) -> str:
    """The address that answers the token's enrollment profile."""
    return f"{server_url.rstrip('/')}/mdm/enroll?{urlencode({'token': token})}"


def qr_text(text: str) -> str:
    """The QR code in block characters, for a terminal."""
    code = qrcode.QRCode(border=2)
    code.add_data(text)
    code.make(fit=True)
    buffer = io.StringIO()
    code.print_ascii(out=buffer, invert=True)
    return buffer.getvalue().rstrip("\n")


def qr_svg(text: str) -> str:
    """The QR code as inline SVG (no script, no external reference)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return str(image.to_string(encoding="unicode"))
