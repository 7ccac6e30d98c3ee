"""The tree is the architecture: imports point down the layers and never round in a cycle.

Layers, lowest first: `events` (the contract), `domain` (pure rules), `projections` (pure read-model
code), `services.adapters` (the outside world), the services and the composition root
(`services.*`), then the entry points (`services.cli`) and tools (`services.tools`). Read from the
source with `ast`, so the test sees every import, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("events", "domain", "projections", "services")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Each first-party module and the first-party modules it imports."""
    modules = {_module_of(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] in PACKAGES:
                    found.add(target)
        graph[name] = found
    return graph


def _in(module: str, *rooms: str) -> bool:
    return any(module == r or module.startswith(r + ".") for r in rooms)


GRAPH = _graph()


def test_the_contract_and_the_pure_code_import_no_service() -> None:
    allowed = {"events": ("events",), "domain": ("events", "domain"),
               "projections": ("events", "domain", "projections")}
    wrong = [(m, t) for m, targets in GRAPH.items() for t in targets
             for layer, ok in allowed.items() if _in(m, layer) and not _in(t, *ok)]
    assert wrong == []


def test_adapters_import_no_service_entry_point_or_tool() -> None:
    wrong = [(m, t) for m, targets in GRAPH.items() if _in(m, "services.adapters")
             for t in targets if _in(t, "services") and not _in(t, "services.adapters")]
    assert wrong == []


def test_only_entry_points_import_the_cli_and_the_tools() -> None:
    wrong = [(m, t) for m, targets in GRAPH.items() for t in targets
             if (_in(t, "services.cli") and not _in(m, "services.cli"))
             or (_in(t, "services.tools") and not _in(m, "services.cli", "services.tools", "services.app"))]
    assert wrong == []


def test_the_import_graph_has_no_cycle() -> None:
    """Package `__init__` modules are skipped as importers of their own children: a package that
    gathers its submodules (the `jiedu` app registering its commands) is not a cycle."""
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if _in(target, module):
                continue
            if state.get(target) == 1:
                cycle.extend([*path, module, target])
                return
            if target not in state:
                visit(target, [*path, module])
            if cycle:
                return
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state and not cycle:
            visit(module, [])
    assert cycle == []
