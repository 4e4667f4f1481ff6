"""The import graph keeps its shape: cli -> web, workers -> common, and no ties inside common."""

from __future__ import annotations

import ast
from collections import defaultdict
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


def test_no_two_way_ties_between_folders_of_common() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in source_files("common"):
        relative = path.relative_to(REPO_ROOT / "common").parts
        if len(relative) < 2:
            continue  # modules directly in common/ are the kernel's leaves and roots
        folder = relative[0]
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "common" and len(parts) > 2 and parts[1] != folder:
                edges[folder].add(parts[1])
    ties = [f"{a} <-> {b}" for a in edges for b in edges[a] if a < b and a in edges.get(b, ())]
    assert ties == []


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
