"""Signing in to the admin page from a Flask test client, as a browser would."""

from __future__ import annotations

import re
import uuid

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common.accounts.users import create_user
from common.platform.db import session_scope
from common.platform.models import Role
from tests.support.stack import TEST_PASSWORD, Stack

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_account(stack: Stack, role: Role = Role.ADMIN) -> str:
    """A new account with this role; its email (the password is TEST_PASSWORD)."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    with session_scope(stack.resources.sessions) as session:
        create_user(session, email, TEST_PASSWORD, role.value.title(), role)
    return email


def form_token(response: TestResponse) -> str:
    """The CSRF token a rendered form carries."""
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[:2000]
    return found.group(1)


def sign_in(
    client: FlaskClient, email: str, password: str = TEST_PASSWORD, **form: str
) -> TestResponse:
    """Open the login form and post it, as a browser does (cookie and hidden token)."""
    token = form_token(client.get("/admin/login"))
    fields = {"csrf_token": token, "email": email, "password": password, **form}
    return client.post("/admin/login", data=fields)


def set_cookies(response: TestResponse) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}
