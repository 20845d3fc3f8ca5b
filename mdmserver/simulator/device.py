"""One simulated device: enrolls as a real one does, then runs poll sessions when woken.

Enrollment: GET the profile with a token (over the air: GET Apple's profile service, then POST
the device attributes signed by the device's Apple identity, whose answer is the profile), read
the MDM and SCEP payloads from the signed profile, get the CA certificate, request an identity
over SCEP with the one-time challenge, then Authenticate and TokenUpdate signed with it. A
session: Idle, then answer each command until the server sends an empty body; a
DeclarativeManagement command among them is followed by a DDM sync and status report
(mdmserver.simulator.ddm). App commands are run by the device's apps (mdmserver.simulator.apps),
which download manifests and packages with requests signed by the device's identity.
EraseDevice wipes the device: it drops its key, identity and enrollment, so whatever it sends
afterwards is unsigned and unknown to the server.
"""

from __future__ import annotations

import plistlib
import random
import threading
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.ca import generate_key
from mdmserver.simulator.answers import Behaviour, answer
from mdmserver.simulator.apps import DeviceApps, Fetch, StoreApp
from mdmserver.simulator.catalog import DeviceSpec
from mdmserver.simulator.ddm import DDMState
from mdmserver.simulator.stats import Stats
from mdmserver.simulator.transport import Transport
from mdmserver.testing.apple_device_pki import AppleDevicePki
from mdmserver.testing.device import CONNECT_TYPE, VirtualDevice
from mdmserver.testing.enrollment import payload, unwrap_profile
from mdmserver.testing.scep_client import (
    build_pkcs_req,
    make_csr,
    parse_cert_rep,
    self_signed_for_scep,
)

MAX_COMMANDS_PER_SESSION = 500  # a server that never sends an empty body is a bug: stop


class EnrollmentFailed(RuntimeError):
    """The device could not enroll (the reason says at which step)."""


class SimDevice:
    def __init__(
        self,
        spec: DeviceSpec,
        behaviour: Behaviour,
        *,
        seed: int = 0,
        app_store: dict[int, StoreApp] | None = None,
    ) -> None:
        self.spec = spec
        self.behaviour = behaviour
        self.rng = random.Random(f"{seed}:{spec.udid}")
        self.identity: VirtualDevice | None = None
        self.topic: str | None = None
        self.profiles: dict[str, dict[str, Any]] = {}
        self.answered: dict[str, tuple[str, str]] = {}  # CommandUUID -> (RequestType, Status)
        self.wiped = False
        self.ddm = DDMState(spec)
        self.app_store = app_store  # shared by a fleet, so publishing an app reaches all
        self.apps = DeviceApps(spec, app_store)
        self.ddm.install_failure = self.apps.install_failure  # --fail-install on DDM too
        # Commands answered NotNow and not yet run: the device polls again later for them.
        self.deferred: set[str] = set()
        # Session scheduling (driven by the fleet): one session at a time per device.
        self.guard = threading.Lock()
        self.busy = False
        self.again = False

    @property
    def udid(self) -> str:
        return self.spec.udid

    @property
    def enrolled(self) -> bool:
        return self.identity is not None

    @property
    def notnow_pending(self) -> bool:
        return bool(self.deferred)

    @property
    def push_token_hex(self) -> str | None:
        return self.identity.push_token.hex() if self.identity else None

    # Enrollment ------------------------------------------------------------------------------

    def enroll(
        self,
        transport: Transport,
        token: str,
        key: rsa.RSAPrivateKey | None = None,
        *,
        apple: AppleDevicePki | None = None,
    ) -> None:
        """Token → signed profile → SCEP identity → Authenticate → TokenUpdate; with `apple`,
        the profile comes over the air, for this device's attested UDID."""
        if apple is None:
            reply = transport.request(
                "enroll_profile", "GET", "/mdm/enroll", params={"token": token}
            )
            signed = reply.content
        else:
            signed = self._over_the_air(transport, token, apple)
        try:
            profile = unwrap_profile(signed)
            mdm = payload(profile, "com.apple.mdm")
            scep = payload(profile, "com.apple.security.scep")["PayloadContent"]
        except (AssertionError, ValueError, KeyError) as exc:
            raise EnrollmentFailed(f"unreadable enrollment profile: {exc}") from exc
        key = key or generate_key("rsa")  # type: ignore[assignment]
        assert isinstance(key, rsa.RSAPrivateKey)
        certificate = self._scep(transport, scep["URL"], scep["Challenge"], key)
        self.topic = mdm["Topic"]
        self.identity = VirtualDevice(
            certificate=certificate,
            key=key,
            topic=mdm["Topic"],
            udid=self.spec.udid,
            serial_number=self.spec.serial_number,
            os_version=self.spec.os_version,
            build_version=self.spec.build_version,
            product_name=self.spec.product_name,
            model=self.spec.model,
            model_name=self.spec.model_name,
        )
        self.wiped = False
        for kind, request in (
            ("authenticate", self.identity.authenticate()),
            ("token_update", self.identity.token_update()),
        ):
            transport.put(kind, "/mdm/checkin", request.body, request.headers)

    def _over_the_air(self, transport: Transport, token: str, apple: AppleDevicePki) -> bytes:
        """Apple's profile service: its challenge, then the attributes signed by an identity
        the (simulated) Apple device CA issued; iPhones send their chain, Macs do not."""
        reply = transport.request(
            "enroll_profile", "GET", "/mdm/enroll", params={"token": token, "ota": "1"}
        )
        try:
            service = unwrap_profile(reply.content)["PayloadContent"]
            url, challenge = service["URL"], service["Challenge"]
        except (AssertionError, ValueError, KeyError, TypeError) as exc:
            raise EnrollmentFailed(f"unreadable profile service payload: {exc}") from exc
        attributes = {
            "UDID": self.spec.udid,
            "SERIAL": self.spec.serial_number,
            "PRODUCT": self.spec.product_name,
            "VERSION": self.spec.build_version,
            "DEVICE_NAME": self.spec.device_name,
            "CHALLENGE": challenge,
        }
        body = apple.sign_attributes(
            attributes,
            apple.device_identity(self.spec.udid),
            send_chain=self.spec.platform != "macOS",
        )
        answer = transport.request(
            "enroll_attributes",
            "POST",
            urlsplit(url).path,  # the URL names the public host; the simulator dials base_url
            data=body,
            headers={"Content-Type": "application/pkcs7-signature"},
        )
        return answer.content

    def _scep(
        self, transport: Transport, url: str, challenge: str, key: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        """GetCACaps, GetCACert, then a PKCSReq signed with a throwaway self-signed cert."""
        path = "/scep"  # the profile's URL names the public host; the simulator dials base_url
        transport.request("scep", "GET", path, params={"operation": "GetCACaps"})
        ca_der = transport.request("scep", "GET", path, params={"operation": "GetCACert"}).content
        ca_cert = x509.load_der_x509_certificate(ca_der)
        csr = make_csr(key, self.spec.device_name, challenge)
        body, transaction_id, nonce = build_pkcs_req(
            csr, self_signed_for_scep(key, self.spec.device_name), key, ca_cert
        )
        reply = transport.request(
            "scep",
            "POST",
            path,
            params={"operation": "PKIOperation"},
            data=body,
            headers={"Content-Type": "application/x-pki-message"},
        )
        result = parse_cert_rep(
            reply.content, ca_cert, key, transaction_id=transaction_id, sender_nonce=nonce
        )
        if result.certificate is None:
            raise EnrollmentFailed(f"SCEP refused ({url}): {result.status} {result.fail_info}")
        return result.certificate

    # Sessions --------------------------------------------------------------------------------

    def session(self, transport: Transport, stats: Stats) -> int:
        """One poll session; returns how many commands were answered (0 when not enrolled)."""
        identity = self.identity
        if identity is None:
            return 0
        for bundle_id in self.apps.pending_removals():  # the user deletes a DDM app too
            if self.ddm.remove_app_by_user(bundle_id):
                self.apps.removal_done(bundle_id)
        self.ddm.tick(identity, transport, stats)  # time passed since the last session
        self.apps.tick()
        fetch = self._downloader(transport, identity)
        request = identity.idle()
        handled = 0
        sync = False
        while handled < MAX_COMMANDS_PER_SESSION:
            body = transport.put("connect", "/mdm/connect", request.body, request.headers)
            if not body:
                if sync:  # DeclarativeManagement: on, and told to sync
                    self.ddm.sync(identity, transport, stats)
                return handled
            command = plistlib.loads(body)
            inner = command.get("Command", {})
            uuid = str(command.get("CommandUUID", ""))
            reply = answer(
                self.spec, self.profiles, inner, self.behaviour, self.rng, self.apps, fetch
            )
            request_type = str(inner.get("RequestType", ""))
            self.answered[uuid] = (request_type, reply.status)
            stats.answer(request_type, reply.status)
            sync = sync or (
                request_type == "DeclarativeManagement" and reply.status == "Acknowledged"
            )
            if reply.status == "NotNow":
                self.deferred.add(uuid)
            else:
                self.deferred.discard(uuid)
            request = identity.result(reply.status, uuid, **reply.keys)
            handled += 1
            if reply.wipe:
                transport.put("connect", "/mdm/connect", request.body, request.headers)
                self.wipe()
                stats.event("wiped")
                return handled
        stats.error("session: too many commands in one session")
        return handled

    def _downloader(self, transport: Transport, identity: VirtualDevice) -> Fetch:
        """GETs for app manifests and files, signed as a device signs them (Mdm-Signature over
        the empty body); any HTTP status comes back to the caller, which fails the install."""

        def fetch(path: str) -> tuple[int, bytes]:
            reply = transport.request(
                "app_download",
                "GET",
                path,
                headers={"Mdm-Signature": identity.sign(b"")},
                expect=tuple(range(100, 600)),
            )
            return reply.status_code, reply.content

        return fetch

    def wipe(self) -> None:
        """Forget everything: key, identity certificate, enrollment, profiles, apps."""
        self.identity = None
        self.topic = None
        self.profiles.clear()
        self.apps = DeviceApps(self.spec, self.app_store)
        self.deferred.clear()
        self.ddm = DDMState(self.spec)
        self.ddm.install_failure = self.apps.install_failure
        self.wiped = True

    def unsigned_idle(self, transport: Transport) -> int:
        """What a device without an identity would send: an Idle with no Mdm-Signature.

        Returns the server's status (it must refuse, with 400/403 and never 401)."""
        body = plistlib.dumps({"UDID": self.spec.udid, "Status": "Idle"})
        response = transport.request(
            "unsigned",
            "PUT",
            "/mdm/connect",
            data=body,
            headers={"Content-Type": CONNECT_TYPE},
            expect=tuple(range(100, 600)),
        )
        return response.status_code
