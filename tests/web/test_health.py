"""Liveness, readiness and the API documentation."""

from __future__ import annotations

from tests.support.stack import Stack


def test_healthz_is_ok(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_with_a_live_chat_worker(stack: Stack) -> None:
    response = stack.client.get("/readyz?detail=true")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    workers = body["checks"]["workers"]
    assert workers["ok"] is True
    assert workers["live"], workers
    assert any("chat" in worker["queues"] for worker in workers["live"])
    assert workers["queues"]["chat"] and workers["queues"]["ingest"]
    assert workers["queues"]["chat-repeats"] == workers["queues"]["chat"]  # the fast lane too
    assert workers["queues"]["reprocess"] == []
    index = body["checks"]["index"]
    assert index["ok"] is True and index["collection"] and index["documents"] > 0
    assert body["checks"]["circuit"] == {"ok": True, "state": "closed"}


def test_readyz_is_not_ready_without_a_chat_worker(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/readyz?detail=true")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["workers"] == {
        "ok": False,
        "live": [],
        "queues": {"chat": [], "chat-repeats": [], "ingest": [], "reprocess": []},
    }
    assert body["checks"]["index"]["ok"] is False


def test_openapi_document_describes_the_api(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/docs/openapi.json")

    assert response.status_code == 200
    document = response.get_json()
    assert document["info"]["title"] == "bookchat"
    paths = document["paths"]
    for path in ("/v1/chat/jobs", "/v1/auth/signup", "/v1/auth/login", "/v1/me", "/readyz"):
        assert path in paths, sorted(paths)
    assert "post" in paths["/v1/chat/jobs"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert paths["/v1/chat/jobs"]["post"]["security"] == [{"bearer": []}]
    # A guest's token is optional at sign-up (it hands over the guest's conversations).
    assert {} in paths["/v1/auth/signup"]["post"]["security"]


def test_swagger_ui_is_served(idle_stack: Stack) -> None:
    response = idle_stack.client.get("/docs/swagger")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "swagger" in response.get_data(as_text=True).lower()
