"""What every console page shares: the templates, who is looking, the login cookie, forms that
cannot be forged from another site, static files with their caching, and HTML error pages.

Who is looking (`viewer`): the token kept in the HttpOnly, SameSite=Strict cookie `auth.COOKIE`
after the login form, checked on every request with `auth.principal_for` (a token revoked
meanwhile logs the reader out at once). A console page without a live token sends the browser
to the login form; the public pages (the Q&A search) need none.

Forms (CSRF, 跨站请求伪造): the cookie is SameSite=Strict, so a browser never sends it with a
request another site started; and every POST must come from this origin (`Origin`, else
`Sec-Fetch-Site`, as browsers send them), which also covers the login form, sent without the
cookie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from services.adapters.tokens import Role
from services.api.auth import COOKIE, Principal, principal_for
from services.api.context import Context, context_of

HERE = Path(__file__).parent
STATIC = HERE / "static"
SHANGHAI = ZoneInfo("Asia/Shanghai")

BASE = "/console"
"""Where the console's pages live; the public Q&A page is at `/qa`, outside it."""
STATIC_URL = f"{BASE}/static"
MAX_FORM = 16 * 1024
"""The longest form body a console page takes (a token, a few filters)."""

ROLE_NAMES = {
    Role.GOV_OFFICE: "区政府办公室 · government office",
    Role.AUDITOR: "审计 · auditor",
    Role.DEPARTMENT: "部门 · department",
    Role.PUBLIC: "公众 · public",
}


class ConsoleError(Exception):
    """A console page's refusal, answered as an HTML page (the API answers JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class LoginRequired(Exception):
    """A console page asked for without a live token: answered with the login form."""


# ── static files ─────────────────────────────────────────────────────────────────────────────


@cache
def fingerprint(name: str) -> str:
    """The first 12 hex digits of a static file's SHA-256: its URLs change with its content."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """A static file's URL with its fingerprint, which lets browsers keep it for a year."""
    return f"{STATIC_URL}/{quote(name)}?v={fingerprint(name)}"


class Static(StaticFiles):
    """The console's files (htmx, the style sheet). Asked for with the current fingerprint
    (`static_url`), a file is immutable: browsers keep it a year without asking again, and a
    new release has new URLs. Without it (or with an old one), browsers must revalidate (ETag,
    Last-Modified: 304 when unchanged), so nobody runs stale code after an upgrade."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = Path(str(full_path)).name
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [""])[0]
        fresh = (STATIC / name).is_file() and asked == fingerprint(name)
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if fresh else "no-cache"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


# ── templates ────────────────────────────────────────────────────────────────────────────────


def local(value: datetime | date | str | None, form: str = "%Y-%m-%d %H:%M") -> str:
    """A time as people in Yuzhong read it (Asia/Shanghai); days as they are."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).strftime(form)
    return value.isoformat()


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["local"] = local
templates.env.globals["static_url"] = static_url
templates.env.globals["BASE"] = BASE
templates.env.globals["ROLE_NAMES"] = ROLE_NAMES


def page(
    request: Request, template: str, context: Mapping[str, Any], *, status: int = 200,
    headers: Mapping[str, str] | None = None, embeddable: bool = False,
) -> HTMLResponse:
    """A page rendered for the request, with the headers every console page carries: not
    cached (it shows one principal's records) and never framed, unless `embeddable` (the
    public Q&A page, which the district website may show in an iframe)."""
    response = templates.TemplateResponse(
        request, template, dict(context), status_code=status, headers=dict(headers or {})
    )
    response.headers.setdefault("Cache-Control", "no-store")
    if embeddable:
        response.headers["Content-Security-Policy"] = CSP + "; frame-ancestors *"
    else:
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = CSP + "; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; object-src 'none'"
)
"""Only this server's own scripts and styles (htmx is served from here, nothing else runs).
Inline styles are let through for the report's SVG charts."""


# ── who is looking ───────────────────────────────────────────────────────────────────────────


def viewer_or_none(request: Request, ctx: Context) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return principal_for(ctx, token)


def viewer(request: Request, ctx: Annotated[Context, Depends(context_of)]) -> Principal:
    """The logged-in reader of a console page (a FastAPI dependency); else to the login form."""
    found = viewer_or_none(request, ctx)
    if found is None or found.role == Role.PUBLIC:
        raise LoginRequired
    return found


Viewer = Annotated[Principal, Depends(viewer)]
Ctx = Annotated[Context, Depends(context_of)]


def login_redirect(request: Request) -> Response:
    """To the login form, coming back here afterwards; htmx follows `HX-Redirect`."""
    target = f"{BASE}/login?next={quote(request.url.path)}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    response = RedirectResponse(target, status_code=303)
    if request.cookies.get(COOKIE):
        response.delete_cookie(COOKIE, path="/")  # a revoked or unknown token: forget it
    return response


def keep_token(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", path="/",
        secure=request.url.scheme == "https",
    )


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a console path of this site, never another site."""
    if target and target.startswith(BASE + "/") and ".." not in target \
            and "\\" not in target and not urlsplit(target).netloc:
        return target
    return f"{BASE}/"


# ── forms ────────────────────────────────────────────────────────────────────────────────────


def same_origin(request: Request) -> None:
    """Refuse a POST another site made the browser send (CSRF)."""
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc != request.headers.get("host"):
            raise ConsoleError(403, "这个表单来自别的网站 · the form was sent from another site")
        return
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        raise ConsoleError(403, "这个表单来自别的网站 · the form was sent from another site")


async def form(request: Request) -> dict[str, str]:
    """A POSTed urlencoded form from this origin, as its fields' first values."""
    same_origin(request)
    body = await request.body()
    if len(body) > MAX_FORM:
        raise ConsoleError(413, "表单过大 · the form is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ConsoleError(400, "表单不是 UTF-8 · the form is not UTF-8") from None
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
