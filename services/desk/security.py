"""Who is signed in, what they may do, and the CSRF token every form carries.

The session is a cookie signed with the desk's secret (Starlette's SessionMiddleware:
itsdangerous, HttpOnly, SameSite=Lax, Secure when configured). It holds the account id
and the CSRF token only; the account is read again from the staff file on each request,
so a deactivated account is out at its next click.
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from services.desk.staff import StaffAccount, StaffRole

CSRF_FIELD = "csrf"
USER = "uid"
TOKEN = "csrf"

ALL_STAFF = frozenset(StaffRole)
CARE = ALL_STAFF
"""Care outcomes and contracts: anyone of the care team."""
RESOLVERS = frozenset({StaffRole.LAWYER, StaffRole.MANAGER})
MANAGERS = frozenset({StaffRole.MANAGER})


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created with the session)."""
    token = request.session.get(TOKEN)
    if not token:
        token = request.session[TOKEN] = secrets.token_urlsafe(32)
    return token


def csrf_matches(request: Request, form: Mapping[str, str]) -> bool:
    """True when the form carries the session's own CSRF token."""
    expected = request.session.get(TOKEN)
    given = form.get(CSRF_FIELD, "")
    return bool(expected) and hmac.compare_digest(str(given).encode(), str(expected).encode())


def sign_in(request: Request, account: StaffAccount) -> None:
    """Start a fresh session for `account` (a new CSRF token: nothing carries over)."""
    request.session.clear()
    request.session[USER] = account.id
    request.session[TOKEN] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """Forget the session."""
    request.session.clear()


def signed_in(request: Request, accounts: Mapping[str, StaffAccount]) -> StaffAccount | None:
    """The active account of the session, or None."""
    account = accounts.get(request.session.get(USER) or "")
    return account if account is not None and account.active else None


Page = Callable[[Request, StaffAccount], Awaitable[Response]]


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (a proxy sets it with --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def guarded(
    accounts: Callable[[], Mapping[str, StaffAccount]],
    roles: frozenset[StaffRole],
    page: Page,
    *,
    refuse: Callable[[Request, StaffAccount | None, int], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """`page` for signed-in people of `roles`; others go to sign in (GET) or are refused.

    Every POST must carry the session's CSRF token, checked before anything else runs.
    """

    async def endpoint(request: Request) -> Response:
        account = signed_in(request, accounts())
        if request.method == "POST":
            form = await request.form()
            if not csrf_matches(request, {k: str(v) for k, v in form.items()}):
                return refuse(request, account, 403)
        if account is None:
            if request.method == "GET":
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
            return refuse(request, None, 401)
        if account.role not in roles:
            return refuse(request, account, 403)
        return await page(request, account)

    return endpoint
