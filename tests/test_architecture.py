"""The shape of the code: the core (updater/) and the adapters (providers/) depend on each other one way.

- providers/ takes from updater/ only the shared leaves: `updater.values` (Origin, parse_origin,
  Credential, tls_hint), `updater.errors` and `updater.redact`, which import nothing back;
- in updater/, only the pull-request step (`updater.pull_request`) imports providers/: it checks
  -scm-provider against the registry, builds the adapter and asks it for the pull request;
- so there is no import cycle between the two packages, at module level or inside a function.

Imports are read from the source with `ast`, every one of them: at module level, inside functions, and
under `if TYPE_CHECKING:` (a type-only import is still something a reader has to follow).
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("updater", "providers")
# The one updater module that consults the registry (providers.check_name, connect, api_url).
ENTRY_POINT = "updater.pull_request"
# What providers/ may import from updater/: leaves that import nothing but each other.
SHARED_LEAVES = frozenset({"updater", "updater.values", "updater.errors", "updater.redact"})
# The core's steps, which an adapter must never reach (they are what imports the registry, or would).
CORE_STEPS = (
    "updater.remote",
    "updater.credentials",
    "updater.cli",
    "updater.publish",
    "updater.pull_request",
)


def _module_files() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _module_files()


def _with_parents(name: str) -> list[str]:
    """`a.b.c` and the packages importing it runs first (`a`, `a.b`), those that are ours."""
    parts = name.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in MODULES]


def _imports(module: str) -> dict[str, int]:
    """Every module of the two packages that `module` imports, anywhere in it, with a line that does."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import name`: name is a submodule when there is one, else an attribute of pkg.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            for name in _with_parents(target):
                if name != module:
                    found.setdefault(name, node.lineno)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _top(module: str) -> str:
    return module.partition(".")[0]


def _path(start: str, goal: str) -> list[str] | None:
    """A chain of imports from start to goal, or None (breadth first: the shortest)."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        current = queue.pop(0)
        if current == goal:
            chain = [current]
            while (step := previous[chain[-1]]) is not None:
                chain.append(step)
            return chain[::-1]
        for target in GRAPH[current]:
            if target not in previous:
                previous[target] = current
                queue.append(target)
    return None


def _reachable(starts: list[str]) -> set[str]:
    seen, stack = set(starts), list(starts)
    while stack:
        for target in GRAPH[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _where(chain: list[str]) -> str:
    return (
        " → ".join(
            f"{a} ({MODULES[a].relative_to(ROOT)}:{GRAPH[a][b]})" for a, b in itertools.pairwise(chain)
        )
        + f" → {chain[-1]}"
    )


def test_the_import_graph_was_read() -> None:
    # So that the checks below mean something: both packages found, and known edges in both directions.
    assert {"updater.pull_request", "updater.remote", "updater.values", "providers", "providers.base"} <= set(
        MODULES
    )
    assert "providers" in GRAPH[ENTRY_POINT] and "updater.values" in GRAPH["providers.base"]
    assert "updater.values" in GRAPH["providers.http"]  # a function-level import is seen too


def test_no_import_cycle_between_updater_and_providers() -> None:
    cycles = []
    for module, targets in GRAPH.items():
        for target in targets:
            if _top(module) != _top(target) and (back := _path(target, module)) is not None:
                cycles.append(_where([module, *back]))
    assert cycles == [], "updater/ and providers/ import each other:\n" + "\n".join(sorted(set(cycles)))


def test_providers_never_reach_the_cores_steps() -> None:
    reached = []
    for module in MODULES:
        if _top(module) == "providers":
            for step in CORE_STEPS:
                if (chain := _path(module, step)) is not None:
                    reached.append(_where(chain))
    assert reached == []


def test_providers_take_only_the_shared_leaves_from_updater() -> None:
    from_providers = _reachable([m for m in MODULES if _top(m) == "providers"])
    outside = sorted(m for m in from_providers if _top(m) == "updater" and m not in SHARED_LEAVES)
    assert outside == [], (
        f"providers/ reaches {outside}: move what the adapters need into updater/values.py (or pass it "
        "in ProviderConfig) instead of importing the core"
    )


def test_the_shared_leaves_import_nothing_but_each_other() -> None:
    for leaf in SHARED_LEAVES:
        assert set(GRAPH[leaf]) <= SHARED_LEAVES, (leaf, GRAPH[leaf])


def test_in_updater_only_the_entry_point_imports_providers() -> None:
    importers = {
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
        for m, targets in GRAPH.items()
        if _top(m) == "updater" and m != ENTRY_POINT
        for target, line in targets.items()
        if _top(target) == "providers"
    }
    assert importers == set(), f"only {ENTRY_POINT} consults the registry and the adapters"


def test_the_provider_names_the_core_derives_are_registry_names() -> None:
    """remote.py names a provider from origin without asking the registry: every name it can return
    must be one the registry knows (a -scm-provider given by the user is checked by the entry point)."""
    import providers

    tree = ast.parse(MODULES["updater.remote"].read_text(encoding="utf-8"))
    returned = {
        node.value.value
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef) and function.name.endswith("_provider")
        for node in ast.walk(function)
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) and node.value.value
    }
    assert returned and returned <= set(providers.names()), returned


@pytest.mark.parametrize("module", ["updater.values", "updater.remote", "updater.credentials"])
def test_the_shared_values_load_no_provider_and_nothing_a_deploy_does_not_use(module: str) -> None:
    code = (
        f"import sys; before = set(sys.modules); import {module}; print(*sorted(set(sys.modules) - before))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    unwanted = {"providers", "dataclasses", "typing", "pathlib", "requests", "github", "gitlab", "atlassian"}
    assert module in loaded
    assert sorted(m for m in loaded if m.partition(".")[0] in unwanted) == []
