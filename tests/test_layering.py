"""The package's import structure: no import cycles between modules, every import points down the layers below,
and the command modules of the CLI do not import each other (what they share lives in cli/common.py)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Lower layers never import higher ones; packages on one layer do not import each other.
LAYERS = {"ops": 0, "data": 1, "nn": 1, "models": 2, "io": 3, "metrics": 4, "editing": 4, "analysis": 5, "training": 5, "serve": 6, "cli": 7}
CLI_SHARED = {"stylegan.cli.common", "stylegan.cli.main"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "stylegan").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the stylegan modules it imports (anywhere in the file, so imports inside functions count)."""
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                candidates = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for c in candidates:
                while c and c not in modules:
                    c = c.rpartition(".")[0]
                if c.startswith("stylegan") and c != name and not (modules[c].name == "__init__.py" and name.startswith(c + ".")):
                    targets.add(c)
                    break
        edges[name] = targets
    return edges


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_no_import_cycles():
    edges = _imports(_modules())
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(edges[m]):
            assert state.get(t) != 1, "import cycle: " + " -> ".join(path[path.index(t):] + [t])
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_imports_point_down_the_layers():
    edges = _imports(_modules())
    assert set(LAYERS) == {p.name for p in (SRC / "stylegan").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    bad = [f"{a} -> {b}" for a, targets in sorted(edges.items()) for b in sorted(targets)
           if _layer(a) is not None and _layer(b) is not None and a.split(".")[1] != b.split(".")[1] and _layer(b) >= _layer(a)]
    assert not bad, "imports against the layering " + str(LAYERS) + ":\n" + "\n".join(bad)


def test_command_modules_do_not_import_each_other():
    edges = _imports(_modules())
    bad = [f"{a} -> {b}" for a, targets in sorted(edges.items()) if a.startswith("stylegan.cli.") and a not in CLI_SHARED
           for b in sorted(targets) if b.startswith("stylegan.cli.") and b not in CLI_SHARED]
    assert not bad, "\n".join(bad)
