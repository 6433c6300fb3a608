"""The package layering, checked by walking every import in seglab/ (also those inside functions).

Lower packages never import higher ones, and no two packages import each other (docs/extending.md).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SEGLAB = Path(__file__).resolve().parents[1] / "seglab"

BASE = {"data", "encoders", "models", "losses", "metrics"}
# package -> the seglab packages it may import (besides itself)
ALLOWED = {
    "data": set(),
    "encoders": set(),
    "models": {"encoders"},
    "metrics": set(),
    "losses": {"metrics"},
    # the key table reads the allowed values where they are defined (choices of inference, engine, ...)
    "config": BASE | {"engine", "inference", "export", "benchmark"},
    "engine": BASE,
    "inference": BASE | {"engine"},
    "export": BASE | {"engine", "inference"},
    "benchmark": BASE | {"engine", "inference", "export"},
    "prompt": BASE | {"engine", "inference"},  # SamPredictor's API over promptable backends
    "tasks": BASE | {"config", "engine", "inference", "export", "benchmark", "prompt", "video"},
    "serve": BASE | {"config", "engine", "inference", "prompt", "video", "tasks"},  # the annotation page, above the tasks
    "video": BASE | {"engine", "inference", "prompt"},  # the Tracker, over promptable backends
    "modes": BASE | {"config", "engine", "inference", "export", "benchmark", "tasks", "serve"},
    "cli": {"config", "modes", "data", "engine", "models", "tasks"},
    "__init__": {"config", "modes"},
    "__main__": {"cli"},
}


ALIASES = {"config_keys": "config", "config_checks": "config"}  # one layer, three files


def package_of(path: Path) -> str:
    rel = path.relative_to(SEGLAB)
    name = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    return ALIASES.get(name, name)


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "seglab"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "seglab" and len(parts) > 1:
                found.add(ALIASES.get(parts[1], parts[1]))
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(SEGLAB.rglob("*.py")):
        own = package_of(path)
        for other in imported_packages(path):
            is_part = (SEGLAB / other).is_dir() or (SEGLAB / f"{other}.py").is_file()
            if other != own and is_part:
                graph[own][other].append(str(path.relative_to(SEGLAB.parent)))
    return graph


def test_every_package_has_a_declared_layer():
    packages = {package_of(p) for p in SEGLAB.rglob("*.py")}
    assert packages <= set(ALLOWED), f"declare the layer of {sorted(packages - set(ALLOWED))} in ALLOWED"


def test_lower_packages_never_import_higher_ones():
    wrong = [f"{files[0]} imports seglab.{other} ({own} may import only {sorted(ALLOWED[own]) or 'nothing'})"
             for own, others in import_graph().items() for other, files in others.items()
             if other not in ALLOWED.get(own, set())]
    assert not wrong, "\n".join(wrong)


def test_engine_never_imports_inference():
    assert "inference" not in import_graph().get("engine", {})


def test_no_package_cycle():
    graph = {own: set(others) for own, others in import_graph().items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in list(graph):
        if node not in state:
            visit(node, [])


def test_the_walker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from seglab.inference.predictor import Predictor\nimport seglab.engine.device\n")
    assert imported_packages(sample) == {"inference", "engine"}
