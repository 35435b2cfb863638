"""The layers import one way (issue 16): pipelines <- training <- evaluation <- bench / report; score_toy apart.
Every import in the package code, module-level or inside a function, is checked from the syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"pipelines": 0, "training": 1, "evaluation": 2, "bench": 3, "report": 3}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imports_point_down_the_layers():
    wrong = []
    for package, level in LAYERS.items():
        for path in (ROOT / package).rglob("*.py"):
            for name in imported_packages(path):
                if name in LAYERS and LAYERS[name] > level or (name == "score_toy" and package != "report"):
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, wrong


def test_score_toy_imports_nothing_else_of_the_project():
    wrong = [f"{p.relative_to(ROOT)} imports {n}" for p in (ROOT / "score_toy").rglob("*.py")
             for n in imported_packages(p) if n in LAYERS]
    assert not wrong, wrong
