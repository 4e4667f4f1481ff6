"""The embedded redis-server: started on demand, reused, persisted under var/, stopped cleanly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from cli.embedded_redis import ensure_embedded_redis, find_embedded_redis, stop_embedded_redis
from common.platform.errors import ServiceUnavailable
from tests.support.redis_server import RedisServer


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _server_pid(client: redis.Redis) -> int:
    info = cast(dict[str, Any], client.info("server"))
    return int(info["process_id"])


def _config(client: redis.Redis, name: str) -> str:
    values = cast(dict[str, str], client.config_get(name))
    return values[name]


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    """A var/ folder whose server is stopped even when a test fails."""
    yield tmp_path
    stop_embedded_redis(tmp_path)


def test_starts_a_server_that_answers(var_dir: Path) -> None:
    url = ensure_embedded_redis(var_dir)

    assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
    client = _client(url)
    assert client.ping() is True
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert (var_dir / "redis" / "redis.port").read_text().strip() == port
    assert (var_dir / "redis" / "redis.pid").exists()
    client.close()


def test_a_second_call_reuses_the_running_server(var_dir: Path) -> None:
    url = ensure_embedded_redis(var_dir)
    client = _client(url)
    client.set("marker", "first-server")
    pid = _server_pid(client)

    again = ensure_embedded_redis(var_dir)

    assert again == url
    assert _client(again).get("marker") == b"first-server"
    assert _server_pid(_client(again)) == pid
    client.close()


def test_data_lives_under_var_dir_in_an_append_only_file(var_dir: Path) -> None:
    url = ensure_embedded_redis(var_dir)
    client = _client(url)
    run_dir = (var_dir / "redis").resolve()

    client.set("book", "chat")

    assert _config(client, "dir") == str(run_dir)
    assert _config(client, "appendonly") == "yes"
    deadline = time.monotonic() + 5
    written = False
    while not written and time.monotonic() < deadline:
        # Redis 7 keeps a manifest and base/incr files in appendonlydir; older ones one file.
        files = [p for p in run_dir.rglob("*.aof") if p.is_file()]
        written = any(b"book" in p.read_bytes() for p in files)
        time.sleep(0.05)
    assert written, sorted(p.name for p in run_dir.rglob("*"))
    client.close()


def test_stop_shuts_the_server_down(var_dir: Path) -> None:
    url = ensure_embedded_redis(var_dir)
    assert _client(url).ping()

    stop_embedded_redis(var_dir)

    with pytest.raises(redis.ConnectionError):
        _client(url).ping()
    assert find_embedded_redis(var_dir) is None
    # Stopping again is harmless, and the next ensure starts a fresh server on the same port.
    stop_embedded_redis(var_dir)
    restarted = ensure_embedded_redis(var_dir)
    assert _client(restarted).ping()
    assert restarted == url


def test_a_port_taken_meanwhile_is_not_mistaken_for_the_server(var_dir: Path) -> None:
    """The port stays recorded after a stop; another var/'s server on it is not ours."""
    url = ensure_embedded_redis(var_dir)
    stop_embedded_redis(var_dir)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    other = RedisServer(var_dir / "other")
    other.port = port
    other.start()
    try:
        assert find_embedded_redis(var_dir) is None
        stop_embedded_redis(var_dir)  # must leave the other server alone
        assert _client(other.url).ping()
        assert ensure_embedded_redis(var_dir) != url  # a fresh port, recorded for next time
        with pytest.raises(ServiceUnavailable):
            ensure_embedded_redis(var_dir / "third", port=port)
    finally:
        other.stop()


def test_data_survives_a_restart(var_dir: Path) -> None:
    _client(ensure_embedded_redis(var_dir)).set("kept", "yes")
    stop_embedded_redis(var_dir)

    restarted = ensure_embedded_redis(var_dir)

    assert _client(restarted).get("kept") == b"yes"
