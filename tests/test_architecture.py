"""The package's shape: no import cycles, and the library loads no tooling."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import tfdata_checkpoint

PACKAGE = pathlib.Path(tfdata_checkpoint.__file__).resolve().parent


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports: top-level, lazy and TYPE_CHECKING ones alike."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_is_read():
    graph = _import_graph()
    # A graph too thin to hold a cycle would make the next test pass for nothing.
    assert "tfdata_checkpoint._src.retention" in graph["tfdata_checkpoint.hook"]
    assert "tfdata_checkpoint._src.storage.collector" in graph["tfdata_checkpoint._src.retention"]
    assert "tfdata_checkpoint.ops" in graph["tfdata_checkpoint._src.iterator_state"]


def test_no_import_cycle():
    cycle = _find_cycle(_import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_library_does_not_import_tooling():
    library = {name: deps for name, deps in _import_graph().items()
               if not name.startswith("tfdata_checkpoint.tools")}
    for name, deps in library.items():
        tooling = sorted(d for d in deps if d.startswith("tfdata_checkpoint.tools"))
        assert not tooling, f"{name} imports {tooling}"


def test_import_loads_no_tooling_and_no_tooling_dependency():
    code = (
        "import sys, tfdata_checkpoint\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('tfdata_checkpoint.tools')"
        " or m.split('.')[0] in ('tqdm', 'matplotlib'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", ["CheckpointInputPipelineHook", "IteratorCheckpointManager",
                                  "save_iterator", "restore_iterator", "wait_for_pending_saves",
                                  "ops"])
def test_public_names(name):
    assert name in tfdata_checkpoint.__all__
    assert getattr(tfdata_checkpoint, name) is not None
