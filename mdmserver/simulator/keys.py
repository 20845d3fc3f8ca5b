"""Device keys, made ahead of time: RSA-2048 generation (~40 ms each) would otherwise be most of
the simulator's own CPU during a fleet's enrollment, and measure the simulator, not the server."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _make(count: int) -> list[bytes]:
    keys = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(count))
    return [
        k.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for k in keys
    ]


def generate_keys(count: int, processes: int = 1) -> list[rsa.RSAPrivateKey]:
    """``count`` RSA-2048 keys, made in ``processes`` worker processes when more than one."""
    if processes <= 1 or count < 8:
        blobs = _make(count)
    else:
        share = [count // processes + (i < count % processes) for i in range(processes)]
        with ProcessPoolExecutor(max_workers=processes) as pool:
            blobs = [blob for part in pool.map(_make, share) for blob in part]
    keys = []
    for blob in blobs:
        # Our own fresh keys: skipping the (slow) consistency check is safe here.
        key = serialization.load_der_private_key(
            blob, password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        keys.append(key)
    return keys
