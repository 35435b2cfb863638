"""The layers use each other one way, and no module imports itself through others (docs/architecture.md):

    pipelines <- sprites <- evaluation <- training <- bench, report <- experiments   (bench and report: one level,
    neither uses the other; experiments, the finished studies run from a checkout, may use all, nothing uses them)
    score_toy apart: it uses nothing of the project, and nothing uses it except as stated in EXCEPTIONS.

A package uses another when one of its .py files, anywhere (module level or inside a function):
- imports it (``import pkg``, ``from pkg.mod import x``);
- names it in a string that is imported or run as a module: ``importlib.import_module("pkg.mod")`` (or
  ``(".mod", package="pkg")``), ``__import__("pkg")``, ``runpy.run_module``, ``importlib.util.find_spec``;
- runs it as a command: ``"-m", "pkg.mod"`` side by side in a list, a tuple or a call's arguments (an argv, however
  it is run later), or ``-m pkg.mod`` inside a string given to subprocess, os.system/popen/exec*/spawn*,
  shlex.split or asyncio's subprocess functions.
A message or docstring that only tells the user a command ("write it with python -m training.moments") is not a use.
Everything is read from the syntax tree (ast): no package is imported.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"pipelines": 0, "sprites": 1, "evaluation": 2, "training": 3, "bench": 4, "report": 4, "experiments": 5}
APART = {"score_toy"}
UNCHECKED = {"tests"}  # the test suite may use every package; nothing may use it
# Every use the rules above forbid but the project allows, (user, used, how): why, in one line. An unused one fails.
EXCEPTIONS = {
    ("report", "score_toy", "import"): "Q2 of the homework is score_toy's: the report draws its figures and tables",
    ("report", "score_toy", "command"): "the report runs python -m score_toy for Q2 and quotes the command",
    ("report", "bench", "command"): "the report runs two benchmarks (timing, FID) and quotes each command; "
                                    "it imports nothing of bench",
}

STRING_IMPORTS = {"import_module", "__import__", "run_module", "find_spec"}
RUNNERS = {"subprocess": ("",), "os": ("system", "popen", "exec", "spawn", "posix_spawn"), "shlex": ("split",),
           "asyncio": ("create_subprocess_",)}
DASH_M = re.compile(r"(?:^|\s)-m\s+([A-Za-z_][\w.{}]*)")


@dataclass(frozen=True)
class Use:
    path: str  # relative to the root, with /
    line: int
    how: str  # "import", "string import" or "command"
    user: str  # the package of the file
    used: str  # the top-level name it uses


def _text(node: ast.AST) -> str | None:
    """A string constant, or an f-string with each ``{...}`` as ``{}``; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _top(module: str | None) -> str | None:
    """The top-level name of a dotted module name (``bench.x`` -> ``bench``); None when it is not one."""
    if not module or not re.fullmatch(r"[A-Za-z_]\w*(\.[\w{}]+)*", module):
        return None
    return module.split(".")[0]


def _name(func: ast.AST) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_runner(func: ast.AST, bare: set[str]) -> bool:
    """subprocess.*, os.system/popen/exec*/spawn*, shlex.split, asyncio.create_subprocess_*, or one of those
    imported by name into the file (``bare``)."""
    if isinstance(func, ast.Name):
        return func.id in bare
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in RUNNERS
            and func.attr.startswith(RUNNERS[func.value.id]))


def _file_uses(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, how, top-level name) of every use in one parsed file, of any package (one walk of the tree)."""
    found, calls, bare = [], [], set()
    for node in ast.walk(tree):
        kind = type(node)
        if kind is ast.Import:
            found += [(node.lineno, "import", a.name.split(".")[0]) for a in node.names]
        elif kind is ast.ImportFrom:
            if node.module and node.level == 0:
                found.append((node.lineno, "import", node.module.split(".")[0]))
            if node.module in RUNNERS:  # from subprocess import run: run(...) is a runner in this file
                bare |= {a.asname or a.name for a in node.names if a.name.startswith(RUNNERS[node.module])}
        elif kind is ast.Call or kind is ast.List or kind is ast.Tuple or kind is ast.Set:
            items = node.args if kind is ast.Call else node.elts
            for flag, module in zip(items, items[1:], strict=False):  # an argv: "-m", "pkg.mod"
                if _text(flag) == "-m" and _top(_text(module)):
                    found.append((module.lineno, "command", _top(_text(module))))
            if kind is ast.Call:
                calls.append(node)
    for call in calls:
        if _name(call.func) in STRING_IMPORTS and call.args:
            name = _text(call.args[0])
            if name is not None and name.startswith("."):  # import_module(".mod", package="pkg"): the package
                name = next((_text(k.value) for k in call.keywords if k.arg == "package"), None)
            if len(call.args) == 5 and not (isinstance(call.args[4], ast.Constant) and call.args[4].value == 0):
                name = None  # __import__(name, g, l, fromlist, level > 0): relative, inside the file's own package
            if _top(name):
                found.append((call.lineno, "string import", _top(name)))
        if _is_runner(call.func, bare):
            for inner in ast.walk(call):
                found += [(inner.lineno, "command", _top(m)) for m in DASH_M.findall(_text(inner) or "") if _top(m)]
    return sorted(set(found))


def packages(root: Path) -> set[str]:
    """The top-level packages under ``root`` (folders with an ``__init__.py``)."""
    return {p.parent.name for p in root.glob("*/__init__.py")}


def uses(root: Path) -> list[Use]:
    """Every use by a package under ``root`` of another package under ``root``."""
    mine = packages(root)
    out = []
    for user in sorted(mine - UNCHECKED):
        for path in sorted((root / user).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            out += [Use(rel, line, how, user, used) for line, how, used in _file_uses(ast.parse(path.read_text(), rel))
                    if used in mine and used != user]
    return out


def violations(root: Path, layers: dict[str, int] = LAYERS, apart: set[str] = APART,
               exceptions: dict[tuple[str, str, str], str] = EXCEPTIONS, found: list[Use] | None = None) -> list[str]:
    """One line per forbidden use under ``root`` (``found``: its uses, when already read), and per package with
    no place in ``layers`` or ``apart``."""
    wrong = [f"{p}/: a package with no layer (add it to LAYERS or APART, and to docs/architecture.md)"
             for p in sorted(packages(root) - set(layers) - apart - UNCHECKED)]
    for u in uses(root) if found is None else found:
        if (u.user, u.used, u.how) in exceptions or (u.user in layers and u.used in layers
                                              and layers[u.used] < layers[u.user]):
            continue
        why = (f"{min(apart & {u.user, u.used})} is apart" if apart & {u.user, u.used}
               else "the test suite" if u.used in UNCHECKED
               else "no layer" if u.used not in layers or u.user not in layers
               else "same level" if layers[u.used] == layers[u.user] else "a higher layer")
        wrong.append(f"{u.path}:{u.line} {u.how} {u.used} ({why})")
    return wrong


def _module_name(root: Path, path: Path) -> str:
    """``training/config.py`` -> ``training.config``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in the file (a function's imports too, and those under
    ``if TYPE_CHECKING:``); ``from pkg import name`` counts ``pkg.name`` when that is a module, else ``pkg``."""
    files = {_module_name(root, path): path for top in packages(root) for path in (root / top).rglob("*.py")}
    graph = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # from . import x, from ..pkg import y: relative to the file's package
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[module] = {e for e in edges if e in files and e != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: each strongly connected set of two or more modules, sorted (Tarjan)."""
    index, low, stack, found = {}, {}, [], []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circle():
    """No project module imports itself through others (a circle makes import order matter)."""
    assert circles(import_graph(ROOT)) == []


def test_a_planted_circle_is_found(tmp_path):
    """The control: a three-module circle through a function's import and a relative import is reported."""
    root = make_project(tmp_path, {
        "training/config.py": "def check():\n    from training.periodic_eval import x\n",
        "training/periodic_eval.py": "from . import model\n",
        "training/model.py": "from training.config import TrainConfig\n",
    })
    assert circles(import_graph(root)) == [["training.config", "training.model", "training.periodic_eval"]]
    assert circles(import_graph(make_project(tmp_path, {"training/model.py": "import os\n"}))) == []


def test_validating_a_config_loads_no_evaluation():
    """Loading and validating a training config with ``eval_every: 0`` imports nothing of ``evaluation``; with
    ``eval_every > 0`` too (the evaluation package loads only when training builds its evaluator)."""
    code = ("import sys\nfrom training.config import load_config\n"
            "for every in ('0', '10'):\n    load_config('configs/tiny.yaml', ['--eval_every', every])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'evaluation'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'training'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.splitlines() == ["[]", "['training', 'training.config', 'training.eval_settings', "
                                             "'training.loss']"], out.stdout + out.stderr


@pytest.fixture(scope="module")
def project_uses() -> list[Use]:
    return uses(ROOT)


def test_the_project_follows_the_layers(project_uses):
    assert violations(ROOT, found=project_uses) == []


def test_every_exception_is_used_and_stated(project_uses):
    used = {(u.user, u.used, u.how) for u in project_uses}
    assert all(len(why.strip()) > 20 and "\n" not in why for why in EXCEPTIONS.values())
    assert set(EXCEPTIONS) <= used, f"stale exceptions (nothing uses them, remove them): {set(EXCEPTIONS) - used}"


def test_docs_architecture_draws_what_is_enforced():
    """docs/architecture.md's Mermaid arrows, followed transitively, are exactly the uses LAYERS allows, its
    dotted arrows and listed reasons are exactly EXCEPTIONS, and it names every package."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", doc, re.S).group(1)
    solid = set(re.findall(r"^\s*(\w+) --> (\w+)\s*$", block, re.M))
    dotted = {(a, b, how) for a, how, b in re.findall(r"^\s*(\w+) -\.->\|([\w ]+)\| (\w+)\s*$", block, re.M)}
    reach = set(solid)
    while new := {(a, d) for a, b in reach for c, d in reach if b == c} - reach:
        reach |= new
    assert reach == {(a, b) for a in LAYERS for b in LAYERS if LAYERS[b] < LAYERS[a]}
    assert dotted == set(EXCEPTIONS)
    assert {n for edge in solid | dotted for n in edge[:2]} == set(LAYERS) | APART
    flat = " ".join(doc.split())
    assert all(f"{a} -> {b} ({how}): {why}." in flat for (a, b, how), why in EXCEPTIONS.items())


# A small fake project: each package's file uses the layers below it in every way that is allowed, and holds the
# look-alikes that are not uses (messages, docstrings, relative imports, a pytest "-m" marker).
CLEAN = {
    "pipelines/core.py": '''
        """Run ``python -m training.fit_steps`` to write one."""
        import subprocess
        HINT = "python -m training.fit_steps writes one"
        def f(path):
            raise FileNotFoundError(f"{path} is missing: write it with python -m training.moments --pipeline DIR")
        def g():
            return subprocess.run(["pytest", "-m", "not slow"])
        __import__("training", globals(), locals(), [], 1)  # relative: pipelines.training
        ''',
    "training/train.py": '''
        import importlib
        from pipelines.core import f
        from . import data
        importlib.import_module("pipelines.core")
        importlib.import_module(".data", package="training")
        ''',
    "training/data.py": "import os\nimport evaluation.score\nos.system('python -m training.train --quick')\n",
    "sprites/images.py": "from pipelines.core import f\n",
    "evaluation/score.py": "import sys\nimport sprites.images\nCMD = [sys.executable, '-m', 'sprites.images']\n",
    "bench/speed.py": '''
        import subprocess
        import sys
        from evaluation import score
        subprocess.run(f"{sys.executable} -m evaluation.score --json out.json", shell=True)
        ''',
    "report/__main__.py": "import pipelines\nfrom score_toy import mixture\n",
    "score_toy/mixture.py": "import numpy\nfrom .models import m\n",
    "tests/test_x.py": "import bench.speed\nimport report.__main__\n",
}


def make_project(root: Path, extra: dict[str, str]) -> Path:
    """Write CLEAN, then ``extra`` (added files, or replaced ones), with an ``__init__.py`` in every package."""
    for rel, text in {**CLEAN, **extra}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def test_the_fake_project_is_clean_except_for_its_stated_exception(tmp_path):
    """The control for the planted cases below: nothing of CLEAN is flagged with the exception stated, and the one
    use of score_toy (report/__main__.py line 2) is flagged without it."""
    root = make_project(tmp_path, {})
    assert violations(root) == []
    assert violations(root, exceptions={}) == ["report/__main__.py:2 import score_toy (score_toy is apart)"]


# case: (file, its text, the one line violations() must give)
PLANTED = {
    "import_module": (
        "pipelines/a.py", "import importlib\nx = importlib.import_module('training.data')\n",
        "pipelines/a.py:2 string import training (a higher layer)"),
    "import_module from-imported, f-string": (
        "evaluation/a.py", "from importlib import import_module\ndef f(n):\n    return import_module(f'bench.{n}')\n",
        "evaluation/a.py:3 string import bench (a higher layer)"),
    "import_module relative with package": (
        "report/a.py", "import importlib\nimportlib.import_module('.speed', package='bench')\n",
        "report/a.py:2 string import bench (same level)"),
    "__import__": (
        "evaluation/a.py", "mod = __import__('training')\n",
        "evaluation/a.py:1 string import training (a higher layer)"),
    "runpy": (
        "pipelines/a.py", "import runpy\nrunpy.run_module('report', run_name='__main__')\n",
        "pipelines/a.py:2 string import report (a higher layer)"),
    "-m in an argv list": (
        "evaluation/a.py", "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'bench.speed'])\n",
        "evaluation/a.py:2 command bench (a higher layer)"),
    "-m in an argv tuple kept for later": (
        "training/a.py", "CMD = ('python', '-m',\n       'report', '--quick')\n",
        "training/a.py:2 command report (a higher layer)"),
    "-m in a call's arguments": (
        "bench/a.py", "def run(*a):\n    pass\nrun('python', '-m', 'report.figures', 'x')\n",
        "bench/a.py:3 command report (same level)"),
    "-m in a shell string": (
        "training/a.py", "import subprocess\nsubprocess.run('python -m bench.targets', shell=True)\n",
        "training/a.py:2 command bench (a higher layer)"),
    "-m in os.system's f-string": (
        "pipelines/a.py", "import os, sys\nos.system(f'{sys.executable} -m evaluation.score x')\n",
        "pipelines/a.py:2 command evaluation (a higher layer)"),
    "-m in a string given to a runner imported by name": (
        "evaluation/a.py", "from subprocess import check_output\ncheck_output('python -m report --quick'.split())\n",
        "evaluation/a.py:2 command report (a higher layer)"),
    "bench imports report": (
        "bench/a.py", "from report.document import Figure\n",
        "bench/a.py:1 import report (same level)"),
    "report imports bench inside a function": (
        "report/a.py", "def f():\n    import bench.common\n",
        "report/a.py:2 import bench (same level)"),
    "an upward import": (
        "pipelines/a.py", "from training.atomic import atomic_write\n",
        "pipelines/a.py:1 import training (a higher layer)"),
    "score_toy uses the project": (
        "score_toy/a.py", "import pipelines.schedule\n",
        "score_toy/a.py:1 import pipelines (score_toy is apart)"),
    "an unstated use of score_toy": (
        "bench/a.py", "from score_toy import mixture\n",
        "bench/a.py:1 import score_toy (score_toy is apart)"),
    "a stated exception of another kind": (
        "report/a.py", "import subprocess\nsubprocess.run(['python', '-m', 'bench.speed'])\nimport bench\n",
        "report/a.py:3 import bench (same level)"),
    "production code uses the tests": (
        "training/a.py", "from tests.fault_injection import inject_fault\n",
        "training/a.py:1 import tests (the test suite)"),
    "a package with no layer": (
        "files/atomic.py", "import os\n",
        "files/: a package with no layer (add it to LAYERS or APART, and to docs/architecture.md)"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_planted_violation_is_caught(tmp_path, case):
    rel, text, expected = PLANTED[case]
    root = make_project(tmp_path, {})
    assert violations(root) == []
    make_project(root, {rel: text})
    found = violations(root)
    assert expected in found, found
    assert len(found) == 1, found


def test_a_training_run_without_periodic_evaluation_loads_no_evaluation(tmp_path):
    """The trainer end to end (a micro run of 2 steps, ``eval_every: 0``) never imports the evaluation package;
    the control run with ``eval_every: 2`` does."""
    from tests.train_helpers import MICRO

    code = ("import sys\nfrom training.train import main\n"
            "rc = main(sys.argv[1:])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] == 'evaluation') != [])")
    loaded = {}
    for every in ("0", "2"):
        args = [*MICRO, "--max_train_steps", "2", "--checkpoint_every", "2", "--eval_every", every,
                "--eval_samples", "4", "--eval_batch_size", "4", "--output_dir", str(tmp_path / f"run{every}")]
        out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        loaded[every] = out.stdout.splitlines()[-1]
    assert loaded == {"0": "0 False", "2": "0 True"}
