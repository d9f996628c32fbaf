"""Survey page links: the token survey puts in `survey_url` and the gateway's page opens.

A token is the survey's claims (survey id, case id, channel, questions, expiry) sealed with
AES-SIV (RFC 5297) under a key derived from a secret survey and the gateway share. SIV is
authenticated encryption: a token reveals no id (only its length), and a token changed by
one bit, or made without the secret, does not open. It is deterministic, so the rule that
builds `survey.requested` stays pure and a replayed request carries the same link.
"""

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Question = Literal["nps", "csat", "ces"]
DEV_SECRET = "lexcare-dev-survey-link-secret-not-for-production"
_CONTEXT = b"lexcare survey link v1"
_LETTERS: dict[str, Question] = {"n": "nps", "c": "csat", "e": "ces"}
_LETTER_OF = {question: letter for letter, question in _LETTERS.items()}
MAX_TOKEN_CHARS = 1_000


class SurveyLinkSettings(BaseSettings):
    """The secret that seals survey links (survey makes them, the gateway opens them)."""

    model_config = SettingsConfigDict(env_prefix="LEXCARE_", extra="ignore")

    survey_link_secret: SecretStr = SecretStr(DEV_SECRET)
    """Seals survey page tokens; the default is public, so unsafe outside development."""

    def survey_links(self, base_url: str = "") -> "SurveyLinks":
        """Links sealed with this secret, under `base_url`."""
        return SurveyLinks(self.survey_link_secret.get_secret_value(), base_url)

    def survey_link_secret_is_default(self) -> bool:
        """True when the secret is the public development default."""
        return self.survey_link_secret.get_secret_value() == DEV_SECRET


@dataclass(frozen=True)
class SurveyClaims:
    """What a survey link says: which survey, whose case, on which channel, until when."""

    survey_id: str
    case_id: str
    channel: str
    questions: tuple[Question, ...]
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        """True once the survey no longer takes answers."""
        return now > self.expires_at


class SurveyLinks:
    """Seals claims into URL-safe tokens and opens them; a wrong token opens to None."""

    def __init__(self, secret: str, base_url: str = "") -> None:
        if not secret:
            raise ValueError("a survey link secret is required")
        self._siv = AESSIV(_derive(secret, b"seal", 64))
        self._nonce_key = _derive(secret, b"form", 32)
        self.base_url = base_url.rstrip("/")

    def token_for(self, claims: SurveyClaims) -> str:
        """The token of `claims` (the same claims always give the same token)."""
        plain = orjson.dumps(
            {
                "s": claims.survey_id,
                "c": claims.case_id,
                "h": claims.channel,
                "q": "".join(_LETTER_OF[q] for q in claims.questions),
                "x": int(claims.expires_at.timestamp()),
            }
        )
        return _encoded(self._siv.encrypt(plain, [_CONTEXT]))

    def url_for(self, claims: SurveyClaims) -> str:
        """The page's address for `claims`: `<base url>/s/<token>`."""
        return f"{self.base_url}/s/{self.token_for(claims)}"

    def open(self, token: str) -> SurveyClaims | None:
        """The claims `token` seals, or None when it was altered or not made with the secret."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if _encoded(sealed) != token:  # one token per sealed bytes: no spare bits
                return None
            data = orjson.loads(self._siv.decrypt(sealed, [_CONTEXT]))
            return SurveyClaims(
                survey_id=data["s"],
                case_id=data["c"],
                channel=data["h"],
                questions=tuple(_LETTERS[letter] for letter in data["q"]),
                expires_at=datetime.fromtimestamp(data["x"], UTC),
            )
        except (InvalidTag, ValueError, binascii.Error, KeyError, TypeError):
            return None

    def form_nonce(self, token: str) -> str:
        """The nonce the page's form carries back with `token` (HMAC of it, not guessable)."""
        digest = hmac.new(self._nonce_key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def nonce_matches(self, token: str, nonce: str) -> bool:
        """True when `nonce` is the form nonce of `token` (constant-time)."""
        return hmac.compare_digest(self.form_nonce(token).encode(), nonce.encode())


def _encoded(sealed: bytes) -> str:
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _derive(secret: str, purpose: bytes, length: int) -> bytes:
    """A key for one purpose, derived from the shared secret (HKDF-SHA256)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=_CONTEXT + purpose)
    return hkdf.derive(secret.encode())
