"""OpenAPI links: where an id one response returns is what another operation takes.

They tell readers (and Schemathesis' stateful tests) how calls chain: a submitted job is read,
cancelled and rated by its id, its conversation opened, renamed and deleted, an ingest job followed
by the operator. No link leads to the event stream or to a long-poll that waits: a stream of
an unfinished job stays open for minutes by design, which a chain of calls must not meet.
"""

from __future__ import annotations

from typing import Any

_JOB = "/v1/chat/jobs/{job_id}"
_CONVERSATION = "/v1/conversations/{conversation_id}"
_ADMIN_JOB = "/v1/admin/jobs/{job_id}"
_JOB_ID = {"job_id": "$response.body#/id"}

# A chat job's id: read it (without waiting), cancel it, see it as the operator does.
_CHAT_JOB_LINKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ReadJob": (_JOB, "get", {**_JOB_ID, "wait": 0}),
    "CancelJob": (f"{_JOB}/cancel", "post", _JOB_ID),
    "InspectJob": (_ADMIN_JOB, "get", _JOB_ID),
}
_CONVERSATION_ID = {"conversation_id": "$response.body#/conversation_id"}
_INGEST_JOB_LINKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "ReadIngestJob": ("/v1/admin/ingest/{job_id}", "get", _JOB_ID),
    "InspectJob": (_ADMIN_JOB, "get", _JOB_ID),
    "CancelJob": (f"{_ADMIN_JOB}/cancel", "post", _JOB_ID),
    "RetryJob": (f"{_ADMIN_JOB}/retry", "post", _JOB_ID),
}

# (path, method, status) -> {link name: (target path, target method, parameters)}
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, Any]]]] = {
    ("/v1/chat/jobs", "post", "202"): {
        **_CHAT_JOB_LINKS,
        "ReadConversation": (_CONVERSATION, "get", _CONVERSATION_ID),
        "RenameConversation": (_CONVERSATION, "patch", _CONVERSATION_ID),
        "DeleteConversation": (_CONVERSATION, "delete", _CONVERSATION_ID),
        "RateAnswer": (f"{_JOB}/feedback", "post", _JOB_ID),
        "WithdrawRating": (f"{_JOB}/feedback", "delete", _JOB_ID),
    },
    ("/v1/chapters/personalize", "post", "202"): _CHAT_JOB_LINKS,
    ("/v1/chapters/translate", "post", "202"): _CHAT_JOB_LINKS,
    (f"{_JOB}/cancel", "post", "200"): {"ReadJob": (_JOB, "get", {**_JOB_ID, "wait": 0})},
    ("/v1/admin/ingest", "post", "202"): _INGEST_JOB_LINKS,
    ("/v1/admin/index/rebuild", "post", "202"): _INGEST_JOB_LINKS,
    ("/v1/admin/index/documents", "post", "202"): _INGEST_JOB_LINKS,
    ("/v1/admin/books/{name}", "delete", "202"): _INGEST_JOB_LINKS,
    ("/v1/admin/jobs/retry", "post", "202"): {"InspectJob": (_ADMIN_JOB, "get", _JOB_ID)},
    ("/v1/auth/signup", "post", "201"): {
        "SetRole": (
            "/v1/admin/users/{user_id}/role",
            "post",
            {"user_id": "$response.body#/user/id"},
        )
    },
}


def add_links(spec: dict[str, Any]) -> None:
    """Put LINKS into the document's responses, naming targets by their operationId."""
    paths = spec["paths"]
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, (target, target_method, parameters) in links.items():
            operation = paths.get(target, {}).get(target_method)
            if operation is None:
                continue
            response.setdefault("links", {})[name] = {
                "operationId": operation["operationId"],
                "parameters": parameters,
            }
