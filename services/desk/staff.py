"""Staff accounts from the staff file, argon2 password checks, the sign-in rate limit."""

from collections import deque
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field


class StaffRole(StrEnum):
    """What a signed-in person may do."""

    AGENT = "agent"
    LAWYER = "lawyer"
    MANAGER = "manager"


class StaffAccount(BaseModel):
    """One person who signs in to the desk."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    """Sign-in name and the id stamped on what the person publishes (a roster id for lawyers)."""
    name: str = Field(min_length=1, max_length=300)
    role: StaffRole
    password_hash: str = Field(min_length=1)
    """argon2id hash (`python -m services.desk hash-password`)."""
    active: bool = True


class StaffFile(BaseModel):
    """The staff file's shape (deploy/config/staff.yaml)."""

    people: list[StaffAccount] = Field(default_factory=list)


def load_staff(path: Path) -> dict[str, StaffAccount]:
    """The accounts of the staff file by id; a duplicate id is refused."""
    accounts = StaffFile.model_validate(yaml.safe_load(path.read_text()) or {}).people
    by_id = {a.id: a for a in accounts}
    if len(by_id) != len(accounts):
        raise ValueError(f"{path}: an account id appears twice")
    return by_id


_HASHER = PasswordHasher()
_UNKNOWN = _HASHER.hash("no such account: this hash keeps the check as slow as a real one")


def hash_password(password: str) -> str:
    """An argon2id hash of `password` for the staff file."""
    return _HASHER.hash(password)


def check_password(
    accounts: dict[str, StaffAccount], login: str, password: str
) -> StaffAccount | None:
    """The active account `login` names when `password` is its own, else None."""
    account = accounts.get(login.strip())
    try:
        _HASHER.verify(account.password_hash if account else _UNKNOWN, password)
    except (VerificationError, InvalidHashError):
        return None
    return account if account is not None and account.active else None


class LoginLimiter:
    """Failed sign-ins per client address within a sliding window."""

    def __init__(self, *, attempts: int, window: timedelta, max_addresses: int = 100_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[datetime]] = {}

    def blocked(self, address: str, now: datetime) -> bool:
        """True when the address used up its failed tries in the window."""
        failures = self._recent(address, now)
        return failures is not None and len(failures) >= self.attempts

    def failed(self, address: str, now: datetime) -> None:
        """Count a failed sign-in from `address`."""
        if address not in self._failures and len(self._failures) >= self.max_addresses:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, deque()).append(now)

    def succeeded(self, address: str) -> None:
        """A good sign-in clears the address's failures."""
        self._failures.pop(address, None)

    def _recent(self, address: str, now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(address)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
