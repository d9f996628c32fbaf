"""How each platform signs its webhooks: pure checks, constant-time compares."""

import hashlib
import hmac


def facebook_signature_ok(body: bytes, header: str | None, app_secret: str) -> bool:
    """True when X-Hub-Signature-256 is `sha256=` + HMAC-SHA256 of the raw body."""
    if not header or not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def facebook_signature(body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 header Facebook sends with `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def zalo_signature(*, app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    """The X-ZEvent-Signature header Zalo sends: `mac=` + SHA-256 of id, body, time, secret."""
    digest = hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret.encode())
    return "mac=" + digest.hexdigest()


def zalo_signature_ok(
    header: str | None, *, app_id: str, body: bytes, timestamp: str, oa_secret: str
) -> bool:
    """True when X-ZEvent-Signature matches the body, its timestamp and the OA secret."""
    if not header or not app_id or not oa_secret:
        return False
    expected = zalo_signature(app_id=app_id, body=body, timestamp=timestamp, oa_secret=oa_secret)
    return hmac.compare_digest(expected, header.strip().lower())


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time equality of a presented token and the configured one (never empty)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
