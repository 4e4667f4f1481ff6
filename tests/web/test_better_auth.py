"""Better Auth JWTs, verified against a JWKS endpoint this test serves with its own Ed25519 keys."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from tests.support.stack import Stack, make_settings, start_stack
from tests.web.assertions import assert_problem

ISSUER = "https://book.example.com"
AUDIENCE = "https://book.example.com"
CACHE_SECONDS = 1  # also the refetch cooldown: tests wait it out instead of a long default


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose keys a test can change; counts its fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": server.public_jwks()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/api/auth/jwks"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def add_key(self) -> str:
        """Publish a new key; returns its kid."""
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = Ed25519PrivateKey.generate()
        return kid

    def public_jwks(self) -> list[dict[str, Any]]:
        """The published keys as JWKs."""
        jwks = []
        for kid, key in self.keys.items():
            jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
            jwks.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return jwks

    def stop(self) -> None:
        """Shut the server down."""
        self._httpd.shutdown()
        self._httpd.server_close()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": f"ba-{uuid.uuid4().hex}",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
        "email": f"ba-{uuid.uuid4().hex[:10]}@example.com",
        "name": "Grace",
    }
    return {**claims, **overrides}


def _sign(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def jwks() -> Iterator[JwksServer]:
    """The JWKS endpoint with one key."""
    server = JwksServer()
    server.add_key()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ba_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str, jwks: JwksServer
) -> Iterator[Stack]:
    """The API (no worker) accepting Better Auth tokens from `jwks`."""
    settings = make_settings(
        tmp_path_factory.mktemp("better-auth"),
        f"{redis_base_url}/0",
        better_auth_jwks_url=jwks.url,
        better_auth_issuer=ISSUER,
        better_auth_audience=AUDIENCE,
        better_auth_jwks_cache_seconds=CACHE_SECONDS,
    )
    running = start_stack(settings, with_worker=False)
    yield running
    running.stop()


@pytest.fixture
def signing(jwks: JwksServer) -> tuple[str, Ed25519PrivateKey]:
    """The kid and private key of a published key."""
    kid = next(iter(jwks.keys))
    return kid, jwks.keys[kid]


def test_a_valid_token_provisions_the_user_once(
    ba_stack: Stack, signing: tuple[str, Ed25519PrivateKey]
) -> None:
    kid, key = signing
    claims = _claims(role="admin")  # a role claim is ignored: Better Auth users are users
    token = _sign(key, kid, claims)

    first = ba_stack.client.get("/v1/me", headers=_bearer(token))
    second = ba_stack.client.get("/v1/me", headers=_bearer(token))

    assert first.status_code == 200, first.get_json()
    me = first.get_json()
    assert me["email"] == claims["email"] and me["name"] == "Grace"
    assert me["role"] == "user"
    assert second.get_json()["id"] == me["id"]
    assert_problem(ba_stack.client.get("/v1/admin/ingest", headers=_bearer(token)), 403)


def test_a_better_auth_user_can_chat_under_their_local_id(
    ba_stack: Stack, signing: tuple[str, Ed25519PrivateKey]
) -> None:
    kid, key = signing
    headers = _bearer(_sign(key, kid, _claims()))

    job = ba_stack.submit(headers, message="What is a node?")

    assert ba_stack.client.get(f"/v1/chat/jobs/{job['id']}", headers=headers).status_code == 200
    listing = ba_stack.client.get("/v1/conversations", headers=headers).get_json()
    assert [c["id"] for c in listing["data"]] == [job["conversation_id"]]


BAD_CLAIMS = {
    "wrong-issuer": {"iss": "https://evil.example.com"},
    "wrong-audience": {"aud": "https://other.example.com"},
    "no-audience": {"aud": None},
    "expired": {"exp": int(time.time()) - 60},
    "no-exp": {"exp": None},
    "empty-sub": {"sub": ""},
}


@pytest.mark.parametrize("overrides", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_bad_claims_are_401(
    ba_stack: Stack, signing: tuple[str, Ed25519PrivateKey], overrides: dict[str, Any]
) -> None:
    kid, key = signing
    claims = {k: v for k, v in _claims(**overrides).items() if v is not None}

    response = ba_stack.client.get("/v1/me", headers=_bearer(_sign(key, kid, claims)))

    assert_problem(response, 401)


def test_a_tampered_token_is_401(ba_stack: Stack, signing: tuple[str, Ed25519PrivateKey]) -> None:
    kid, key = signing
    header, _payload, signature = _sign(key, kid, _claims()).split(".")
    _, other_payload, _ = _sign(key, kid, _claims(sub="someone-else")).split(".")

    response = ba_stack.client.get(
        "/v1/me", headers=_bearer(f"{header}.{other_payload}.{signature}")
    )

    assert_problem(response, 401, "invalid_token")


def test_an_unknown_kid_refetches_then_is_401(ba_stack: Stack, jwks: JwksServer) -> None:
    time.sleep(CACHE_SECONDS + 0.1)  # past the refetch cooldown
    fetches = jwks.fetches
    stranger = Ed25519PrivateKey.generate()

    response = ba_stack.client.get("/v1/me", headers=_bearer(_sign(stranger, "unknown", _claims())))

    assert_problem(response, 401, "invalid_token")
    assert jwks.fetches > fetches


def test_a_rotated_key_is_picked_up_by_a_refetch(ba_stack: Stack, jwks: JwksServer) -> None:
    kid, key = signing_before = next(iter(jwks.keys.items()))
    assert (
        ba_stack.client.get("/v1/me", headers=_bearer(_sign(key, kid, _claims()))).status_code
        == 200
    )
    new_kid = jwks.add_key()
    time.sleep(CACHE_SECONDS + 0.1)

    response = ba_stack.client.get(
        "/v1/me", headers=_bearer(_sign(jwks.keys[new_kid], new_kid, _claims()))
    )

    assert response.status_code == 200, response.get_json()
    assert signing_before  # the old key stays published too


def test_algorithm_confusion_is_refused(
    ba_stack: Stack, signing: tuple[str, Ed25519PrivateKey]
) -> None:
    kid, key = signing
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # HS256 keyed with the public key, under Better Auth's kid.
    hs_with_kid = jwt.encode(_claims(), public_pem, algorithm="HS256", headers={"kid": kid})
    # EdDSA without a kid would be checked against our secret: refused before that.
    eddsa_no_kid = jwt.encode(_claims(), key, algorithm="EdDSA")

    for token in (hs_with_kid, eddsa_no_kid):
        assert_problem(ba_stack.client.get("/v1/me", headers=_bearer(token)), 401, "invalid_token")


def test_our_own_tokens_still_work(ba_stack: Stack) -> None:
    headers = ba_stack.signup()

    assert ba_stack.client.get("/v1/me", headers=headers).status_code == 200


def test_an_unreachable_jwks_is_503(
    tmp_path_factory: pytest.TempPathFactory, redis_base_url: str
) -> None:
    server = JwksServer()
    kid = server.add_key()
    key = server.keys[kid]
    settings = make_settings(
        tmp_path_factory.mktemp("better-auth-down"),
        f"{redis_base_url}/0",
        better_auth_jwks_url=server.url,
        better_auth_issuer=ISSUER,
        better_auth_audience=AUDIENCE,
    )
    server.stop()
    running = start_stack(settings, with_worker=False)
    try:
        response = running.client.get("/v1/me", headers=_bearer(_sign(key, kid, _claims())))
    finally:
        running.stop()

    problem = assert_problem(response, 503, "auth_provider_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert problem["request_id"]
