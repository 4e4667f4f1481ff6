"""Forged, stale and misused tokens are a 401 problem on every route, never a 500 or data."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.support.stack import JWT_TEST_SECRET, Stack
from tests.web.assertions import assert_problem

# (method, path, body): routes behind an access token, an admin route among them.
ROUTES = [
    ("get", "/v1/me", None),
    ("get", "/v1/conversations", None),
    ("get", "/v1/chat/jobs/00000000-0000-4000-8000-00000000abcd", None),  # a job nobody has
    ("post", "/v1/chat/jobs", {"message": "hello"}),
    ("post", "/v1/search", {"query": "nodes"}),
    ("get", "/v1/admin/ingest", None),
    ("delete", "/v1/me", None),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _family(account: dict[str, Any]) -> str:
    # The account's live sign-in family, so that each forgery is refused for its own flaw.
    family: str = jwt.decode(account["access_token"], options={"verify_signature": False})["fam"]
    return family


def _claims(account: dict[str, Any], sub: Any = None, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": account["user"]["id"] if sub is None else sub,
        "type": "access",
        "fresh": False,
        "jti": uuid.uuid4().hex,
        "fam": _family(account),
    }
    return {**claims, "iat": now, "nbf": now, "exp": now + 600, **extra}


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def _forge(claims: dict[str, Any], key: str = JWT_TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _alg_none(account: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(_claims(account)).encode())}."


def _sign_up(stack: Stack) -> dict[str, Any]:
    email = f"sec-{uuid.uuid4().hex[:10]}@example.com"
    response = stack.client.post(
        "/v1/auth/signup", json={"email": email, "password": "correct-horse-battery"}
    )
    assert response.status_code == 201
    return dict(response.get_json())


@pytest.fixture
def account(idle_stack: Stack) -> dict[str, Any]:
    """A fresh user's sign-up body (tokens and user)."""
    return _sign_up(idle_stack)


@pytest.fixture(scope="module")
def shared_account(idle_stack: Stack) -> dict[str, Any]:
    """One user for the tests that only read (hashing a password per case is slow)."""
    return _sign_up(idle_stack)


FORGERIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "tampered-signature": lambda a: _tampered(a["access_token"]),
    "alg-none": _alg_none,
    "hs512-wrong-key": lambda a: _forge(_claims(a), "x" * 64, "HS512"),
    "hs512-our-key": lambda a: _forge(_claims(a), JWT_TEST_SECRET, "HS512"),
    "expired": lambda a: _forge(_claims(a, exp=int(time.time()) - 5)),
    "no-exp": lambda a: _forge(_without(_claims(a), "exp")),
    "unknown-user": lambda a: _forge(_claims(a, sub=str(uuid.uuid4()))),
    "malformed-sub": lambda a: _forge(_claims(a, sub="not-a-uuid")),
    "numeric-sub": lambda a: _forge(_claims(a, sub=12345)),
    "sub-missing": lambda a: _forge(_without(_claims(a), "sub")),
    # Signed with our secret, but without the id or family that revocation needs.
    "no-jti": lambda a: _forge(_without(_claims(a), "jti")),
    "empty-jti": lambda a: _forge(_claims(a, jti="")),
    "no-family": lambda a: _forge(_without(_claims(a), "fam")),
    "numeric-family": lambda a: _forge(_claims(a, fam=7)),
    "refresh-as-access": lambda a: a["refresh_token"],
    "kid-without-better-auth": lambda a: jwt.encode(
        _claims(a), JWT_TEST_SECRET, algorithm="HS256", headers={"kid": "k1"}
    ),
}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
@pytest.mark.parametrize(
    ("method", "path", "body"), ROUTES, ids=[f"{r[0]}-{r[1].split('/')[2]}" for r in ROUTES]
)
def test_bad_tokens_are_401_on_every_route(
    idle_stack: Stack,
    shared_account: dict[str, Any],
    forgery: Callable[[dict[str, Any]], str],
    method: str,
    path: str,
    body: Any,
) -> None:
    headers = {"Authorization": f"Bearer {forgery(shared_account)}"}

    response = getattr(idle_stack.client, method)(path, json=body, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_forged_token_can_still_be_made_valid_by_the_secret(
    idle_stack: Stack, shared_account: dict[str, Any]
) -> None:
    # The forging helpers themselves are sound: signed with our secret, the same claims work.
    token = _forge(_claims(shared_account))

    response = idle_stack.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


def test_a_reused_refresh_token_revokes_the_whole_family(
    idle_stack: Stack, account: dict[str, Any]
) -> None:
    client = idle_stack.client
    old = {"Authorization": f"Bearer {account['refresh_token']}"}
    rotated = client.post("/v1/auth/refresh", headers=old).get_json()

    replay = client.post("/v1/auth/refresh", headers=old)

    body = assert_problem(replay, 401, "invalid_token")
    assert "already used" in body["detail"]
    new_refresh = {"Authorization": f"Bearer {rotated['refresh_token']}"}
    assert_problem(client.post("/v1/auth/refresh", headers=new_refresh), 401)
    for access in (account["access_token"], rotated["access_token"]):
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {access}"})
        assert_problem(me, 401, "invalid_token")


def test_an_access_token_cannot_refresh(idle_stack: Stack, account: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {account['access_token']}"}

    assert_problem(idle_stack.client.post("/v1/auth/refresh", headers=headers), 401)


def test_a_user_on_an_admin_route_is_403_before_validation(
    idle_stack: Stack, account: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {account['access_token']}"}

    response = idle_stack.client.post("/v1/admin/ingest", json={"bad": 1}, headers=headers)

    assert_problem(response, 403, "forbidden")


def test_a_role_claim_does_not_make_an_admin(idle_stack: Stack, account: dict[str, Any]) -> None:
    # Signed with our key and claiming admin: the row's role decides.
    token = _forge(_claims(account, role="admin"))

    response = idle_stack.client.get(
        "/v1/admin/ingest", headers={"Authorization": f"Bearer {token}"}
    )

    assert_problem(response, 403, "forbidden")


def test_another_users_conversation_and_job_are_404(idle_stack: Stack) -> None:
    owner, other = idle_stack.signup(), idle_stack.signup()
    job = idle_stack.submit(owner, message="What is a node?")
    conversation = f"/v1/conversations/{job['conversation_id']}"

    assert_problem(idle_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=other), 404)
    assert_problem(idle_stack.client.get(conversation, headers=other), 404)
    assert_problem(idle_stack.client.delete(conversation, headers=other), 404)
    rename = idle_stack.client.patch(conversation, json={"title": "mine"}, headers=other)
    assert_problem(rename, 404)
    assert idle_stack.client.get(conversation, headers=owner).status_code == 200


@pytest.mark.parametrize("missing", ["jti", "fam"])
def test_a_token_without_id_or_family_is_refused_though_signed_by_us(
    idle_stack: Stack, shared_account: dict[str, Any], missing: str
) -> None:
    token = _forge(_without(_claims(shared_account), missing))

    response = idle_stack.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})

    body = assert_problem(response, 401, "invalid_token")
    assert body["detail"] == "the token has no id or no session family"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_every_token_we_issue_carries_an_id_and_a_family(idle_stack: Stack) -> None:
    signed_up = _sign_up(idle_stack)
    guest = idle_stack.client.post("/v1/auth/guest").get_json()
    refreshed = idle_stack.client.post(
        "/v1/auth/refresh", headers={"Authorization": f"Bearer {signed_up['refresh_token']}"}
    ).get_json()
    tokens = [
        signed_up["access_token"],
        signed_up["refresh_token"],
        guest["access_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ]

    for token in tokens:
        claims = jwt.decode(token, options={"verify_signature": False})
        assert isinstance(claims["jti"], str) and claims["jti"]
        assert isinstance(claims["fam"], str) and claims["fam"]
