"""Who is asking: the principal of a request and the roles each route serves.

A request carries a token (`Authorization: Bearer jiedu_…`, or the console's HttpOnly cookie
`COOKIE`) issued by `jiedu creds token issue PARTY`, or nothing: the public. A token that is
malformed, unknown or revoked is refused (401), never taken for the public: a caller that
meant to log in should hear that it failed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.adapters.tokens import Role
from services.api.context import Context, context_of
from services.api.responses import reply

COOKIE = "jiedu_token"
"""The console's cookie holding the token after its login form (HttpOnly, SameSite=Strict)."""

READ_ALL = (Role.GOV_OFFICE, Role.AUDITOR)
"""Roles that read every organ's records."""


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: a role, and the organ a department (or the office) is."""

    role: Role
    department: str | None = None
    token_id: str | None = None

    @property
    def reads_all(self) -> bool:
        return self.role in READ_ALL

    def may_read(self, department: str | None) -> bool:
        """Whether this principal may see records of `department`'s cases."""
        return self.reads_all or (
            self.role == Role.DEPARTMENT and department is not None
            and department == self.department
        )

    def scope(self, department: str | None) -> str | None:
        """The department a listing is narrowed to: a department sees only its own (asking
        for another's is refused), the office and the auditor what they ask for."""
        if self.reads_all:
            return department
        if department is not None and department != self.department:
            raise Forbidden(f"a department reads its own records only, not {department}'s")
        return self.department


PUBLIC = Principal(Role.PUBLIC)


class Unauthorised(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": 'Bearer realm="jiedu"'})


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


def principal_for(context: Context, token: str) -> Principal | None:
    """The principal a token speaks for; None if it is no live token (the console's login
    form calls this to check what it was given)."""
    record = context.tokens.find(token.strip())
    if record is None:
        return None
    return Principal(record.role, record.department, record.id)


BEARER = HTTPBearer(auto_error=False, description="a token from `jiedu creds token issue`")
"""Declares the scheme in the OpenAPI document; `principal` reads the header itself."""


def principal(
    request: Request, context: Annotated[Context, Depends(context_of)],
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> Principal:
    """The request's principal (a FastAPI dependency): from its bearer token, else from the
    console's cookie, else the public."""
    header = request.headers.get("authorization")
    token: str | None = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorised("give the token as `Authorization: Bearer <token>`")
        token = value
    else:
        token = request.cookies.get(COOKIE)
    if token is None:
        return PUBLIC
    found = principal_for(context, token)
    if found is None:
        raise Unauthorised("the token is not valid (unknown, malformed or revoked)")
    request.state.principal = found
    return found


def allow(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that admits the principals of `roles` and refuses the rest (401 for the
    public, who may log in; 403 for a principal whose role may not)."""

    async def admitted(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            if who.role == Role.PUBLIC:
                raise Unauthorised("this needs a token (jiedu creds token issue)")
            raise Forbidden(f"the role {who.role} may not do this")
        return who

    return admitted


Anyone = Annotated[Principal, Depends(principal)]
Reader = Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.GOV_OFFICE, Role.AUDITOR))]
"""A logged-in reader: a department (its own records), the office or an auditor (all)."""
Overseer = Annotated[Principal, Depends(allow(Role.GOV_OFFICE, Role.AUDITOR))]
"""The office or an auditor: the whole district, operations, rejected messages' bytes."""
Office = Annotated[Principal, Depends(allow(Role.GOV_OFFICE))]
"""The government office alone (supervision: publishing the quarterly report)."""
Source = Annotated[Principal, Depends(allow(Role.DEPARTMENT, Role.GOV_OFFICE))]
"""An organ's system posting its own events."""


def install(app: FastAPI) -> None:
    """Answer HTTP errors in Jiedu's JSON form: `{"error": …, "detail": …}`."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return reply(
            {"error": _ERRORS.get(exc.status_code, "error"), "detail": exc.detail},
            status_code=exc.status_code, headers=exc.headers,
        )


_ERRORS = {400: "bad_request", 401: "unauthorised", 403: "forbidden", 404: "not_found",
           413: "too_large", 422: "invalid", 503: "unavailable"}
