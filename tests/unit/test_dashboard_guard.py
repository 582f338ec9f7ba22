"""The dashboard answers a browser on this machine holding this run's token, and nothing else: a page
of another site that rebinds its name to 127.0.0.1 (its own Host), a request without the token, or
with another run's token is refused."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from shepherd_cli.ui.app import create_app
from shepherd_cli.ui.guard import Access
from shepherd_cli.ui.server import address

PORT = 8765
TOKEN = "run-token-0123456789"
STATIC = "/static/dashboard.css"


def nothing() -> None:
    raise AssertionError("a refused request reads nothing")


def client(base_url: str = f"http://127.0.0.1:{PORT}") -> TestClient:
    access = Access(token=TOKEN, port=PORT)
    return TestClient(create_app(nothing, access), base_url=base_url, follow_redirects=False)  # type: ignore[arg-type]


def test_the_printed_address_sets_a_strict_httponly_cookie_and_drops_the_token_from_the_url():
    browser = client()

    first = browser.get(address("127.0.0.1", PORT, TOKEN, STATIC).removeprefix(f"http://127.0.0.1:{PORT}"))

    assert first.status_code == 303 and first.headers["location"] == STATIC
    cookie = first.headers["set-cookie"].lower()
    assert f"shepherd_ui_{PORT}={TOKEN}".lower() in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert browser.get(STATIC).status_code == 200  # the cookie is sent from now on


def test_other_query_parameters_survive_the_redirect():
    response = client().get(f"/history?name=churn&token={TOKEN}&page=2")

    assert response.status_code == 303 and response.headers["location"] == "/history?name=churn&page=2"


@pytest.mark.parametrize("credential", [{}, {"token": "another-run"}, {"token": ""}, {"token": "é"}])
def test_without_this_runs_token_the_answer_is_403(credential):
    response = client().get(STATIC, params=credential)

    assert response.status_code == 403 and "open the address `shepherd ui` printed" in response.text


def test_a_wrong_cookie_is_403():
    browser = client()
    browser.cookies.set(f"shepherd_ui_{PORT}", "another-run")

    assert browser.get(STATIC).status_code == 403


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://evil.example:{PORT}",  # DNS rebinding: the attacker's name, now resolving to 127.0.0.1
        f"http://127.0.0.1.evil.example:{PORT}",
        "http://127.0.0.1:9999",  # another port
        "http://127.0.0.1",
    ],
)
def test_a_host_that_is_not_this_loopback_address_is_refused_even_with_the_token(base_url):
    response = client(base_url).get(STATIC, params={"token": TOKEN})

    assert response.status_code == 421 and "set-cookie" not in response.headers


@pytest.mark.parametrize("base_url", [f"http://localhost:{PORT}", f"http://[::1]:{PORT}", f"http://LOCALHOST:{PORT}"])
def test_every_loopback_name_is_answered(base_url):
    assert client(base_url).get(STATIC, params={"token": TOKEN}).status_code == 303
