"""Staff sign-in: argon2 passwords, inactive accounts, the per-address rate limit."""

from datetime import timedelta

import pytest

from services.desk.staff import LoginLimiter, check_password, load_staff
from tests.infra import ROOT
from tests.unit.desk.factories import PASSWORDS, T0, staff


def test_the_right_password_signs_in_and_a_wrong_or_unknown_one_does_not():
    accounts = staff()
    assert check_password(accounts, "agent-01", PASSWORDS["agent-01"]).role == "agent"
    assert check_password(accounts, "agent-01", "mk-manager") is None
    assert check_password(accounts, "nobody", "mk-agent") is None


def test_an_inactive_account_cannot_sign_in():
    accounts = staff()
    accounts["agent-01"] = accounts["agent-01"].model_copy(update={"active": False})
    assert check_password(accounts, "agent-01", PASSWORDS["agent-01"]) is None


def test_failed_sign_ins_block_the_address_for_the_window_only():
    limiter = LoginLimiter(attempts=3, window=timedelta(minutes=5))
    for _ in range(3):
        assert not limiter.blocked("10.0.0.1", T0)
        limiter.failed("10.0.0.1", T0)
    assert limiter.blocked("10.0.0.1", T0)
    assert not limiter.blocked("10.0.0.2", T0)
    assert not limiter.blocked("10.0.0.1", T0 + timedelta(minutes=5, seconds=1))


def test_the_dev_staff_file_has_one_account_per_role_with_argon2_hashes():
    accounts = load_staff(ROOT / "deploy" / "config" / "staff.yaml")
    assert {a.role for a in accounts.values()} == {"agent", "lawyer", "manager"}
    assert all(a.password_hash.startswith("$argon2id$") for a in accounts.values())
    assert check_password(accounts, "agent-01", "doi-mat-khau-agent") is not None


def test_a_staff_file_with_a_duplicate_id_is_refused(tmp_path):
    path = tmp_path / "staff.yaml"
    entry = "  - {id: a, name: A, role: agent, password_hash: x}\n"
    path.write_text("people:\n" + entry + entry)
    with pytest.raises(ValueError, match="twice"):
        load_staff(path)
