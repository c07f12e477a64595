"""The package has no import cycle among the imports modules make when they load (which would
break depending on which module a program imports first), and the fuzz command's modules are
in none even counting the imports functions make when they run (which hide a tangle the
module layout should not have)."""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "actverify"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(path: Path, name: str, known: set[str], *, top_level_only: bool) -> set[str]:
    """The package's modules that `name` imports (a package's own submodules are imported by
    `from package import submodule`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # `if TYPE_CHECKING:` blocks never run
        nodes = [n for n in nodes if not (isinstance(n, ast.If)
                                          and "TYPE_CHECKING" in ast.unparse(n.test))]
        nodes = [sub for n in nodes for sub in ast.walk(n)
                 if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 or sub is n]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != name:
                found.add(n)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a path that ends where it starts; None if there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


FUZZING = ["actverify.fuzz", "actverify.fuzzing", "actverify.fuzzing.orchestrator",
           "actverify.fuzzing.records", "actverify.fuzzing.shard", "actverify.progress",
           "actverify.outcomes", "actverify.plugin"]


@functools.lru_cache(maxsize=2)  # parsed once per session, not once per parametrized test
def _graph(*, top_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    # A module imports its packages first (actverify.fuzzing for actverify.fuzzing.shard):
    # that is no cycle.
    return {name: {m for m in _imports(path, name, set(modules), top_level_only=top_level_only)
                   if not name.startswith(m + ".")}
            for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def test_no_module_imports_itself_at_load() -> None:
    graph = _graph(top_level_only=True)
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("name", FUZZING)
def test_the_fuzz_modules_are_in_no_cycle_even_through_imports_in_functions(name: str) -> None:
    graph = _graph(top_level_only=False)
    back = [m for m in graph[name] if name in _reachable(graph, m) or m == name]
    assert not back, f"{name} imports {back}, which import {name} back"


# A child per module, forked from one interpreter that holds the third-party packages only:
# importing torch once (about 1.5 s of CPU) instead of once per order, and every module of the
# fuzz command gets to be the first of the package to load.  Third-party packages are no part
# of a cycle among the package's own modules.
_IMPORT_FIRST = textwrap.dedent("""
    import importlib, os, sys, traceback
    import hypothesis, pytest, torch
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "actverify")
    if loaded:
        sys.exit(f"actverify modules loaded before the forks: {loaded}")
    names, failed = sys.argv[1:], []
    for first in names:
        pid = os.fork()
        if pid == 0:
            try:
                for name in [first] + [n for n in names if n != first]:
                    importlib.import_module(name)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        if os.waitpid(pid, 0)[1] != 0:
            failed.append(first)
    sys.exit(f"failed to import first: {failed}" if failed else 0)
    """)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a child per module")
def test_the_fuzzing_modules_import_alone_in_any_order() -> None:
    """Each module of the fuzz command (and the runner) imports first, the others after it,
    in an interpreter where no module of the package is loaded yet."""
    names = FUZZING + ["actverify.runner"]
    proc = subprocess.run([sys.executable, "-c", _IMPORT_FIRST, *names], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
