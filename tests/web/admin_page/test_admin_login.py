"""The admin page's own sign-in: cookies, CSRF, who is refused, and where they are sent."""

from __future__ import annotations

from sqlalchemy import update

from common.platform.db import session_scope
from common.platform.models import Role, User
from tests.support.stack import TEST_PASSWORD, Stack
from tests.web.admin_page.helpers import form_token, make_account, set_cookies, sign_in
from tests.web.assertions import assert_problem
from web.admin_page import CONTENT_SECURITY_POLICY

HTML = {"Accept": "text/html"}


def test_anonymous_visitors_are_sent_to_the_login_with_their_path(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/admin/?window=30d")

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/login?next=/admin/?window%3D30d"


def test_the_login_form_is_served_with_strict_headers_and_cookie(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/admin/login")

    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = set_cookies(response)["bookchat_admin_login"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = response.get_data(as_text=True)
    assert "<script" not in page and "style=" not in page
    assert '<label for="email">' in page and '<label for="password">' in page


def test_an_admin_signs_in_with_a_session_cookie_and_no_token_in_the_url(
    idle_stack: Stack,
) -> None:
    client = idle_stack.client
    response = sign_in(client, make_account(idle_stack), next="/admin/?window=30d")

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/?window=30d"
    cookie = set_cookies(response)["bookchat_admin"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http in the tests; see the https test
    session_id = cookie.split(";")[0].split("=", 1)[1]
    assert len(session_id) >= 40 and session_id not in response.headers["Location"]
    assert client.get("/admin/login").status_code == 303  # signed in: the form sends you on


def test_over_https_the_cookie_is_secure_and_host_only(idle_stack: Stack) -> None:
    client, https = idle_stack.app.test_client(), "https://localhost"
    token = form_token(client.get("/admin/login", base_url=https))
    fields = {"csrf_token": token, "email": make_account(idle_stack), "password": TEST_PASSWORD}

    response = client.post("/admin/login", data=fields, base_url=https)

    cookie = set_cookies(response)["__Host-bookchat_admin"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie


def test_a_wrong_password_shows_the_form_again_without_a_session(idle_stack: Stack) -> None:
    response = sign_in(idle_stack.client, make_account(idle_stack), password="wrong-password")

    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert "bookchat_admin" not in set_cookies(response)


def test_a_reader_with_the_right_password_is_refused_with_a_403_page(idle_stack: Stack) -> None:
    client = idle_stack.client
    response = sign_in(client, make_account(idle_stack, Role.USER))

    assert response.status_code == 403 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "not an administrator" in page and response.headers["X-Request-ID"] in page
    assert "bookchat_admin" not in set_cookies(response)
    assert client.get("/admin/").status_code == 303  # still anonymous


def test_an_api_client_gets_the_refusal_as_problem_json(idle_stack: Stack) -> None:
    client = idle_stack.client
    token = form_token(client.get("/admin/login"))
    email = make_account(idle_stack, Role.USER)

    response = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": "pw-pw-pw-pw-"},
        headers={"Accept": "application/problem+json"},
    )

    assert_problem(response, 403, "forbidden")


def test_the_login_form_needs_its_token(idle_stack: Stack) -> None:
    client = idle_stack.client
    client.get("/admin/login")
    email = make_account(idle_stack)

    without = client.post("/admin/login", data={"email": email, "password": "pw-pw-pw-pw-"})
    forged = client.post(
        "/admin/login", data={"csrf_token": "0" * 64, "email": email, "password": "pw-pw-pw-pw-"}
    )

    assert without.status_code == forged.status_code == 403
    assert "bookchat_admin" not in set_cookies(without) | set_cookies(forged)


def test_a_login_posted_from_another_site_is_refused(idle_stack: Stack) -> None:
    client = idle_stack.client
    token = form_token(client.get("/admin/login"))
    fields = {"csrf_token": token, "email": make_account(idle_stack), "password": "pw-pw-pw-pw-"}

    response = client.post("/admin/login", data=fields, headers={"Origin": "https://evil.example"})

    assert response.status_code == 403


def test_next_never_leads_to_another_site(idle_stack: Stack) -> None:
    targets = ("//evil.example/admin", "https://evil.example/admin", "/\\evil.example", "/v1/me")
    for target in targets:
        response = sign_in(idle_stack.app.test_client(), make_account(idle_stack), next=target)
        assert response.headers["Location"] == "/admin/", target


def test_posts_need_the_sessions_csrf_token(idle_stack: Stack) -> None:
    client = idle_stack.client
    sign_in(client, make_account(idle_stack))

    missing = client.post("/admin/logout", headers=HTML)
    wrong = client.post("/admin/logout", data={"csrf_token": "x" * 43}, headers=HTML)
    retry = client.post("/admin/dead-letters/retry", data={}, headers=HTML)

    assert missing.status_code == wrong.status_code == retry.status_code == 403
    assert "security token" in missing.get_data(as_text=True)


def test_logout_ends_the_session_for_every_copy_of_the_cookie(idle_stack: Stack) -> None:
    client = idle_stack.client
    cookie = set_cookies(sign_in(client, make_account(idle_stack)))["bookchat_admin"]
    session_id = cookie.split(";")[0].split("=", 1)[1]
    token = form_token(client.get("/admin/"))

    response = client.post("/admin/logout", data={"csrf_token": token})

    assert response.status_code == 303 and response.headers["Location"] == "/admin/login"
    assert "Max-Age=0" in set_cookies(response)["bookchat_admin"]
    copy = idle_stack.app.test_client()
    copy.set_cookie("bookchat_admin", session_id)
    assert copy.get("/admin/").status_code == 303  # the stolen copy is worthless too


def test_a_demoted_admin_is_refused_at_once(idle_stack: Stack) -> None:
    client = idle_stack.client
    email = make_account(idle_stack)
    sign_in(client, email)
    with session_scope(idle_stack.resources.sessions) as session:
        session.execute(update(User).where(User.email == email).values(role=Role.USER.value))

    response = client.get("/admin/insights.csv?table=per_day", headers=HTML)

    assert response.status_code == 403
    assert "for administrators" in response.get_data(as_text=True)


def test_a_form_post_is_not_judged_as_json_elsewhere(idle_stack: Stack) -> None:
    response = idle_stack.client.post("/v1/auth/login", data={"email": "a@example.com"})

    assert_problem(response, 415)
