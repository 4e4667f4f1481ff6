"""The import graph keeps its shape: cli -> web, workers -> common, and common's rooms in order."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.stack import REPO_ROOT

LAYERS = ("cli", "web", "workers", "common")
# What each top-level package may import from the others.
ALLOWED = {
    "cli": {"web", "workers", "common"},
    "web": {"common"},
    "workers": {"common"},
    "common": set(),
}


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a source file imports, at any depth (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def source_files(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def test_layers_import_only_downwards() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for package in LAYERS
        for path in source_files(package)
        for name in imported_modules(path)
        if name.split(".")[0] in LAYERS
        and name.split(".")[0] != package
        and name.split(".")[0] not in ALLOWED[package]
    ]
    assert wrong == []


def test_workers_and_common_never_import_flask() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for package in ("workers", "common")
        for path in source_files(package)
        for name in imported_modules(path)
        if name.split(".")[0] in {"flask", "flask_openapi3", "flask_jwt_extended"}
    ]
    assert wrong == []


# The rooms of common/, lowest first: a room imports only rooms below it (and itself).
ROOMS = ("platform", "book", "accounts", "llm", "jobs", "admin")


def room_edges() -> list[tuple[str, str, str]]:
    """(importing file, its room, imported room) for every import between rooms of common/."""
    edges = []
    for path in source_files("common"):
        relative = path.relative_to(REPO_ROOT / "common").parts
        room = relative[0] if len(relative) > 1 else ""
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "common" and len(parts) > 1 and parts[1] != room:
                edges.append((str(path.relative_to(REPO_ROOT)), room, parts[1]))
    return edges


def test_common_is_only_rooms() -> None:
    loose = [
        path.name
        for path in (REPO_ROOT / "common").iterdir()
        if path.name != "__init__.py"
        and path.name != "__pycache__"
        and not (path.is_dir() and path.name in ROOMS)
    ]
    assert loose == []


def test_rooms_of_common_import_only_downwards() -> None:
    rank = {room: index for index, room in enumerate(ROOMS)}
    wrong = [
        f"{path} ({room}) imports common.{target}"
        for path, room, target in room_edges()
        if target not in rank or rank[target] > rank[room]
    ]
    assert wrong == []


def test_the_room_scan_sees_imports_between_rooms() -> None:
    # If the scan found nothing, the test above would pass on any graph.
    edges = {(room, target) for _, room, target in room_edges()}
    assert {("jobs", "platform"), ("llm", "book"), ("admin", "jobs")} <= edges


# Only cli/ starts processes (tests/ and bench/ start their own): client factories connect.
SPAWNING_MODULES = {"subprocess", "multiprocessing", "pty", "cli.embedded_redis"}
SPAWNING_NAMES = {
    "Popen",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "ensure_embedded_redis",
    "with_embedded_redis",
    "fork",
    "forkpty",
    "posix_spawn",
    "posix_spawnp",
    "system",
    "popen",
}
SPAWNING_PREFIXES = ("spawn", "exec")  # os.spawnv, os.execve and the like


def spawning_uses(path: Path) -> list[str]:
    """What in a source file could start a process: imports of spawning modules, such calls."""
    found = [f"imports {name}" for name in imported_modules(path) if name in SPAWNING_MODULES]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id not in {"os", "asyncio", "subprocess"}:
                continue
            names = [node.attr]
        elif isinstance(node, ast.Name):
            names = [node.id] if node.id in {"Popen", "ensure_embedded_redis"} else []
        else:
            continue
        found += [
            f"uses {name} (line {getattr(node, 'lineno', '?')})"
            for name in names
            if name in SPAWNING_NAMES or name.startswith(SPAWNING_PREFIXES)
        ]
    return found


def test_only_cli_starts_processes() -> None:
    wrong = [
        f"{path.relative_to(REPO_ROOT)} {use}"
        for package in ("web", "workers", "common")
        for path in source_files(package)
        for use in spawning_uses(path)
    ]
    assert wrong == []


def test_the_spawn_scan_sees_what_cli_does() -> None:
    # The scan must recognise the ways cli/ starts processes, or the test above proves nothing.
    assert "imports subprocess" in spawning_uses(REPO_ROOT / "cli" / "embedded_redis.py")
    assert any("Popen" in use for use in spawning_uses(REPO_ROOT / "cli" / "processes.py"))
    assert any("execve" in use for use in spawning_uses(REPO_ROOT / "cli" / "main.py"))
