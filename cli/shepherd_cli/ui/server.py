"""`shepherd ui`: serve the dashboard on the loopback interface.

No login, so no exposure: the default bind is 127.0.0.1, and any other address must be asked for
explicitly with --host (the CLI says what that means). Requests need a loopback Host and the run's
token, which the printed address carries (guard.py). The data is read with the caller's own
credentials, exactly as the other commands read it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn

from shepherd_cli.errors import CliError
from shepherd_cli.target import Target
from shepherd_cli.ui.app import create_app
from shepherd_cli.ui.guard import TOKEN_PARAMETER, Access

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, host_given: bool) -> None:
    """Refuse a non-loopback address unless the user named it with --host themselves."""
    if not is_loopback(host) and not host_given:
        raise CliError(f"refusing to serve the dashboard on {host}: it has no login; pass --host {host} to mean it")


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def build_server(target: Callable[[], Target], host: str, port: int, token: str) -> uvicorn.Server:
    if not port_free(host, port):
        raise CliError(f"port {port} on {host} is in use: pass --port")
    access = Access(token=token, port=port, bound_host=None if is_loopback(host) else host)
    config = uvicorn.Config(create_app(target, access), host=host, port=port, log_level="warning", access_log=False)
    return uvicorn.Server(config)


def address(host: str, port: int, token: str, path: str = "/") -> str:
    """The URL to open: the first request with it sets the token's cookie."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}?{TOKEN_PARAMETER}={token}"
