"""SCEP issuing policy: who gets a device identity from our CA.

A PKCSReq must carry a one-time challenge (from an enrollment profile or a renewal); a
RenewalReq must be signed by an unrevoked, unexpired certificate our CA issued that is the
identity currently bound to an active enrollment (an identity that never enrolled, or one that
was superseded, mints nothing). Anything else is a FAILURE CertRep and nothing is recorded. The
message handling itself is mdmserver.scep. The CRL lists the identities we revoked.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mdmserver.crypto.ca import build_crl, fingerprint_sha256, issue_certificate
from mdmserver.enrollment.instance import InstanceKeys
from mdmserver.enrollment.onetime import secret_hash
from mdmserver.logs import get_logger
from mdmserver.scep.caps import ca_caps_response, ca_cert_response
from mdmserver.scep.errors import FailInfo, ScepRejected
from mdmserver.scep.message import (
    CrlRequest,
    MessageType,
    PkiRequest,
    build_cert_rep_crl,
    build_cert_rep_failure,
    build_cert_rep_success,
    read_pki_message,
)
from mdmserver.service.rate_limits import RateLimiter
from mdmserver.storage.ports import EnrollmentPort
from mdmserver.storage.sql.enrollment_store import IssuedCert, SpendOutcome

log = get_logger("scep")

CERT_REP_CONTENT_TYPE = "application/x-pki-message"
CRL_CONTENT_TYPE = "application/pkix-crl"
CRL_LIFETIME = timedelta(days=1)  # nextUpdate: a relying party fetches it again within a day
MAX_SUBJECT_LENGTH = 1024
_RSA_BITS = (2048, 8192)
_EC_BITS = (256, 384, 521)


class ScepService:
    def __init__(
        self,
        store: EnrollmentPort,
        keys: InstanceKeys,
        *,
        identity_lifetime: timedelta,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.ca_cert = keys.ca_cert
        self.ca_key = keys.ca_key
        self.identity_lifetime = identity_lifetime

    def ca_caps(self) -> tuple[bytes, str]:
        return ca_caps_response()

    def ca_cert_der(self) -> tuple[bytes, str]:
        return ca_cert_response(self.ca_cert)

    def pki_operation(self, data: bytes) -> bytes:
        """A CertRep for a PKIOperation body (SUCCESS or FAILURE).

        A message too broken to answer raises ScepError (the web layer's HTTP 400)."""
        try:
            request = read_pki_message(data, self.ca_cert, self.ca_key)
            if isinstance(request, CrlRequest):
                return self._crl_rep(request)
            certificate = self._decide(request)
        except ScepRejected as exc:
            log.info(
                "scep_rejected",
                extra={
                    "fields": {
                        "transaction_id": exc.transaction.transaction_id,
                        "fail_info": exc.fail_info.name,
                        "reason": str(exc),
                    }
                },
            )
            return build_cert_rep_failure(exc.transaction, exc.fail_info, self.ca_cert, self.ca_key)
        return build_cert_rep_success(request, certificate, self.ca_cert, self.ca_key)

    def _decide(self, request: PkiRequest) -> x509.Certificate:
        self._check_csr(request)
        if request.message_type == MessageType.RenewalReq:
            return self._renewal(request)
        return self._with_challenge(request)

    def _with_challenge(self, request: PkiRequest) -> x509.Certificate:
        if not request.challenge:
            raise _reject(request, "the CSR carries no challenge password", FailInfo.badRequest)
        self._limit(secret_hash(request.challenge))
        certificate = self._sign(request)
        record = _record(certificate, method="enroll")
        outcome = self.store.spend_challenge(secret_hash(request.challenge), record)
        if outcome != SpendOutcome.ISSUED:
            # The signed certificate is discarded: it was never recorded nor delivered.
            raise _reject(request, f"challenge refused: {outcome.value}", FailInfo.badRequest)
        self._log_issued(request, certificate, "challenge")
        return certificate

    def _renewal(self, request: PkiRequest) -> x509.Certificate:
        signer = request.signer_cert
        self._limit(fingerprint_sha256(signer))
        try:
            signer.verify_directly_issued_by(self.ca_cert)
        except (InvalidSignature, ValueError, TypeError):
            raise _reject(
                request, "RenewalReq signer was not issued by this CA", FailInfo.badMessageCheck
            ) from None
        previous = self.store.issued(fingerprint_sha256(signer))
        now = datetime.now(UTC)
        if previous is None:
            raise _reject(request, "RenewalReq signer was not issued here", FailInfo.badCertId)
        if previous.revoked:
            raise _reject(request, "RenewalReq signer certificate is revoked", FailInfo.badCertId)
        if min(previous.not_after, signer.not_valid_after_utc) <= now:
            raise _reject(request, "RenewalReq signer certificate expired", FailInfo.badCertId)
        device_id = self.store.active_device_for(previous.fingerprint)
        if device_id is None or previous.device_id not in (None, device_id):
            raise _reject(
                request,
                "RenewalReq signer is not the identity of an active enrollment",
                FailInfo.badCertId,
            )
        certificate = self._sign(request)
        record = _record(certificate, method="renewalreq")
        self.store.record_certificate(
            replace(record, token_id=previous.token_id, device_id=device_id)
        )
        self._log_issued(request, certificate, "renewal", device_id)
        return certificate

    def _crl_rep(self, request: CrlRequest) -> bytes:
        """SCEP GetCRL: the same CRL as /scep/crl, for the one CA this server runs."""
        if request.issuer_der != self.ca_cert.subject.public_bytes():
            raise ScepRejected(
                "GetCRL names an issuer other than this CA", FailInfo.badCertId, request.transaction
            )
        return build_cert_rep_crl(request, self.crl_der(), self.ca_cert, self.ca_key)

    def crl_der(self) -> bytes:
        """The CA's current CRL (DER): every unexpired identity we revoked."""
        revoked = [(int(entry.serial, 16), entry.revoked_at) for entry in self.store.revoked()]
        crl = build_crl(
            self.ca_cert, self.ca_key, revoked, now=datetime.now(UTC), lifetime=CRL_LIFETIME
        )
        return crl.public_bytes(serialization.Encoding.DER)

    def _limit(self, credential: str) -> None:
        """Count a request made with this challenge or renewing certificate (RateLimited)."""
        if self.limiter is not None:
            self.limiter.hit(self.limiter.limits.scep_credential, credential)

    def _check_csr(self, request: PkiRequest) -> None:
        key = request.csr.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            ok = _RSA_BITS[0] <= key.key_size <= _RSA_BITS[1]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            ok = key.curve.key_size in _EC_BITS
        else:
            ok = False
        if not ok:
            raise _reject(
                request, "the CSR key must be RSA 2048+ or EC P-256/384/521", FailInfo.badAlg
            )
        if len(request.csr.subject.rfc4514_string()) > MAX_SUBJECT_LENGTH:
            raise _reject(request, "the CSR subject is too long", FailInfo.badRequest)

    def _sign(self, request: PkiRequest) -> x509.Certificate:
        return issue_certificate(
            self.ca_cert,
            self.ca_key,
            request.csr.public_key(),  # type: ignore[arg-type]
            request.csr.subject,
            lifetime=self.identity_lifetime,
            client_auth=True,
        )

    @staticmethod
    def _log_issued(
        request: PkiRequest, cert: x509.Certificate, via: str, device_id: str | None = None
    ) -> None:
        log.info(
            "scep_issued",
            extra={
                "fields": {
                    "transaction_id": request.transaction_id,
                    "via": via,
                    "serial": f"{cert.serial_number:x}",
                    "cert": fingerprint_sha256(cert),
                    "device_id": device_id,
                }
            },
        )


def _reject(request: PkiRequest, message: str, fail_info: FailInfo) -> ScepRejected:
    return ScepRejected(message, fail_info, request.transaction)


def _record(cert: x509.Certificate, *, method: str) -> IssuedCert:
    return IssuedCert(
        serial=f"{cert.serial_number:x}",
        fingerprint=fingerprint_sha256(cert),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        issued_at=datetime.now(UTC),
        revoked=False,
        token_id=None,
        device_id=None,
        method=method,
    )
