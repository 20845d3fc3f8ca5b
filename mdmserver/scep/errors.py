"""SCEP failures, each carrying the RFC 8894 failInfo a CertRep would answer with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class FailInfo(IntEnum):
    """RFC 8894 section 3.2.1.4.5 failInfo values (sent as a decimal PrintableString)."""

    badAlg = 0
    badMessageCheck = 1
    badRequest = 2
    badTime = 3
    badCertId = 4


@dataclass(frozen=True)
class Transaction:
    """What a failure CertRep needs: known once the request's signed attributes are read."""

    transaction_id: str
    sender_nonce: bytes
    digest_algorithm: str = "sha256"


class ScepError(ValueError):
    """A PKIOperation that cannot be served.

    Raised as is when the message could not be read far enough to know its transaction id and
    nonce: there is nobody to address a CertRep to, so the web layer answers HTTP 400.
    """

    def __init__(self, message: str, fail_info: FailInfo = FailInfo.badRequest) -> None:
        super().__init__(message)
        self.fail_info = fail_info


class ScepRejected(ScepError):
    """A PKIOperation whose transaction is known: answer it with a FAILURE CertRep.

    `transaction` is what `build_cert_rep_failure` needs. It may come from a message whose
    signature did not verify (fail_info badMessageCheck); echoing its nonce in a signed failure
    reveals nothing, but the web layer may prefer HTTP 400 for those.
    """

    def __init__(self, message: str, fail_info: FailInfo, transaction: Transaction) -> None:
        super().__init__(message, fail_info)
        self.transaction = transaction
