"""Who may read the dashboard: a browser on this machine that was given the address `shepherd ui`
printed.

The dashboard reads with its owner's AWS credentials and has no login. Binding to the loopback
interface keeps other machines out, but not other web pages in the owner's browser:

* **DNS rebinding.** A page on ``evil.example`` re-points that name at 127.0.0.1 and then reads the
  dashboard as its own origin. Its requests carry ``Host: evil.example``: only loopback names
  (``localhost``, ``127.0.0.1``, ``[::1]``) or the address given with ``--host``, with the dashboard's
  port, are answered; anything else gets 421 Misdirected Request.
* **Other local users and processes.** Each run draws a random token (``secrets.token_urlsafe``) and
  prints it in the URL. The first request with ``?token=`` gets it back as a cookie (HttpOnly,
  SameSite=Strict, so no other site's page can send it) and is redirected to the same address without
  it, so links work and the token stays out of the address bar; any request with neither is 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
TOKEN_PARAMETER = "token"  # noqa: S105 - the query parameter's name, not a secret


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Access:
    """What a request must carry: a Host among `hosts` with `port`, and `token`."""

    token: str
    port: int
    bound_host: str | None = None  # the address given with --host, also accepted in Host

    @property
    def cookie(self) -> str:
        return f"shepherd_ui_{self.port}"  # cookies ignore ports: one per dashboard on this machine

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        name, _, port = host_header.lower().rpartition(":")
        names = LOOPBACK_NAMES | ({_bracketed(self.bound_host.lower())} if self.bound_host else set())
        return name in names and port == str(self.port)

    def token_matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token.encode())


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Guard:
    """ASGI middleware: refuse what `access` does not allow (see the module docstring)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: no request to check
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(Request(scope))
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def refusal(self, request: Request) -> Response | None:
        """None when the request may go on; else the response it gets."""
        if not self.access.host_allowed(Headers(scope=request.scope).get("host")):
            return PlainTextResponse("unknown Host: open the address `shepherd ui` printed", status_code=421)
        if self.access.token_matches(request.query_params.get(TOKEN_PARAMETER)):
            query = request.url.remove_query_params(TOKEN_PARAMETER).query
            redirect = RedirectResponse(request.url.path + (f"?{query}" if query else ""), status_code=303)
            redirect.set_cookie(self.access.cookie, self.access.token, httponly=True, samesite="strict", path="/")
            return redirect
        if self.access.token_matches(request.cookies.get(self.access.cookie)):
            return None
        return PlainTextResponse(
            "no dashboard token: open the address `shepherd ui` printed (with its ?token=)", status_code=403
        )
