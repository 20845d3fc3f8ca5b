"""Signing profiles: once per content, by the profile-signing certificate, in workers.

The signer is ``signing.pem`` (certificate, then its chain) and ``signing.key`` in MDM_HOME,
as ``mdmserver init`` writes them. Signatures are cached by the SHA-256 of what was signed, so
a profile sent to ten thousand devices is signed once; only per-device content (device
variables, encryption to the device) is signed per device.

Job functions here take plain values (paths, URLs, bytes) so any job backend can pickle them:
the task :func:`sign_task` (name ``profiles.sign``) signs a batch and fills the cache; the
plain function :func:`sign_contents_job` only signs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509

from mdmserver.crypto.ca import PrivateKey, load_pem_certificates, load_private_key
from mdmserver.crypto.cms_sign import sign_profile

SIGNING_CERT, SIGNING_KEY = "signing.pem", "signing.key"


class SignerMissing(RuntimeError):
    """No profile-signing certificate in MDM_HOME."""


@dataclass(frozen=True)
class ProfileSigner:
    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def sign(self, content: bytes) -> bytes:
        return sign_profile(content, self.cert, self.key, self.chain)

    @classmethod
    def from_home(cls, home: Path) -> ProfileSigner:
        cert_path, key_path = home / SIGNING_CERT, home / SIGNING_KEY
        if not (cert_path.is_file() and key_path.is_file()):
            raise SignerMissing(
                f"no {SIGNING_CERT}/{SIGNING_KEY} in {home}: run `mdmserver init` first"
            )
        certs = load_pem_certificates(cert_path.read_bytes())
        key = load_private_key(key_path.read_bytes())
        return cls(cert=certs[0], key=key, chain=tuple(certs[1:]))


@cache
def _signer(home: str) -> ProfileSigner:
    """One signer per worker process, loaded on its first job."""
    return ProfileSigner.from_home(Path(home))


def digest_of(content: bytes, recipient: str = "") -> str:
    """The cache key: SHA-256 of the content (and of the recipient for encrypted content)."""
    h = hashlib.sha256(content)
    if recipient:
        h.update(b"\0" + recipient.encode())
    return h.hexdigest()


def sign_contents_job(home: str, contents: Sequence[bytes]) -> list[bytes]:
    """Job: sign each content with the signer in `home`; returns the DER signatures in order."""
    signer = _signer(home)
    return [signer.sign(content) for content in contents]


SIGN_TASK = "profiles.sign"
SIGN_QUEUE = "profiles"  # one of mdmserver.jobs.backend.QUEUES, which workers serve
SIGN_BATCH = 100  # contents per job: amortises the job overhead, keeps each job short


def sign_task(ctx: Any, contents: Sequence[bytes]) -> int:
    """Job task, context first as mdmserver.jobs.tasks expects: sign the contents not yet in
    the cache and store the signatures. Returns how many it signed."""
    from mdmserver.storage.sql.profile_store import ProfileStore

    store = ProfileStore(ctx.engine)
    missing = {digest_of(c): c for c in contents}
    missing = {d: c for d, c in missing.items() if store.signature(d) is None}
    signed = sign_contents_job(str(ctx.config.home), list(missing.values()))
    store.save_signatures(dict(zip(missing, signed, strict=True)))
    return len(signed)


def sign_jobs(contents: Sequence[bytes], batch: int = SIGN_BATCH) -> list[Any]:
    """The jobs that sign `contents` through the job backend, `batch` per job."""
    from mdmserver.jobs.backend import Job

    return [
        Job(task=SIGN_TASK, args=(list(contents[i : i + batch]),), queue=SIGN_QUEUE)
        for i in range(0, len(contents), batch)
    ]


def register_tasks(tasks: dict[str, Callable[..., Any]]) -> None:
    """Make the signing task known to a job registry (the job layer's TASKS)."""
    tasks.setdefault(SIGN_TASK, sign_task)


class JobRunner(Protocol):
    """What signing needs from the job layer: run a job function, get its result."""

    def run(self, func: Callable[..., Any], *args: Any) -> Any: ...


class InlineRunner:
    """Runs the job in the calling process: the embedded default, and inside device requests."""

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)


class SignatureCache(Protocol):
    def signature(self, digest: str) -> bytes | None: ...
    def save_signatures(self, signed: Mapping[str, bytes]) -> None: ...


@dataclass
class Signing:
    """Signed bytes for contents, from the cache or a signing job."""

    home: Path
    cache: SignatureCache
    runner: JobRunner = field(default_factory=InlineRunner)

    def signed(
        self,
        content: bytes,
        recipient: str = "",
        transform: Callable[[bytes], bytes] | None = None,
        *,
        remember: bool = True,
    ) -> bytes:
        """The signature of `content`, or of ``transform(content)`` (encryption to
        `recipient`), cached under the content and recipient: encrypting again would give
        different bytes, so the cache key is what went in, not what came out. With
        `remember` false (content with secrets, sent unencrypted) nothing is cached."""
        digest = digest_of(content, recipient)
        found = self.cache.signature(digest) if remember else None
        if found is not None:
            return found
        to_sign = transform(content) if transform is not None else content
        (der,) = self.runner.run(sign_contents_job, str(self.home), [to_sign])
        if remember:
            self.cache.save_signatures({digest: der})
        return der
