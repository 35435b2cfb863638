"""The suite's skip rule: a test may skip only for a missing optional third-party package, a missing browser (which
CI provides: SPRITEDIFF_REQUIRE_BROWSER) or a missing CUDA device. A project module always imports for real."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import importorskip_third_party, project_packages

TESTS = Path(__file__).resolve().parent
# The whole of a skipif condition: no browser (where CI does not require one), no CUDA device, or a third-party
# package that is not installed.
ALLOWED_CONDITIONS = {'find_chromium() is None and not os.environ.get("SPRITEDIFF_REQUIRE_BROWSER")',
                      "not torch.cuda.is_available()"}
MISSING_PACKAGE = re.compile(r'importlib\.util\.find_spec\("(?P<name>[\w.]+)"\) is None')


def allowed_condition(condition: str) -> bool:
    """A skipif condition the rule allows (see ALLOWED_CONDITIONS and MISSING_PACKAGE), as written."""
    m = MISSING_PACKAGE.fullmatch(condition)
    return condition in ALLOWED_CONDITIONS or bool(m and m.group("name").split(".")[0] not in project_packages())


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every call of ``pytest.<name>`` (or ``pytest.mark.<name>``) in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
            found.append(node)
    return found


def test_project_packages_are_the_repositorys():
    assert {"pipelines", "sprites", "training", "evaluation", "tests"} <= project_packages()
    assert "torch" not in project_packages()


def test_importorskip_of_a_project_module_fails_and_of_a_missing_package_skips():
    with pytest.raises(pytest.fail.Exception, match="part of this project and must import"):
        importorskip_third_party("evaluation.tm_metrics")
    with pytest.raises(pytest.fail.Exception):
        pytest.importorskip("pipelines")  # conftest puts the guard in pytest's place
    with pytest.raises(pytest.skip.Exception):
        importorskip_third_party("a_package_that_is_not_installed_anywhere")
    assert importorskip_third_party("numpy").__name__ == "numpy"


@pytest.mark.parametrize("path", sorted(TESTS.glob("*.py")), ids=lambda p: p.name)
def test_every_skip_in_the_tests_source_is_an_allowed_kind(path):
    source = path.read_text()
    tree = ast.parse(source)
    if path.name == Path(__file__).name:  # this file calls the guard on purpose, in its asserts
        return
    for call in calls(tree, "importorskip"):
        arg = call.args[0]
        assert isinstance(arg, ast.Constant), f"{path.name}:{call.lineno}: importorskip of a computed name"
        assert arg.value.split(".")[0] not in project_packages(), \
            f"{path.name}:{call.lineno}: importorskip({arg.value!r}) hides a project module's ImportError"
    for call in calls(tree, "skipif"):
        condition = " ".join(ast.get_source_segment(source, call.args[0]).split())
        assert allowed_condition(condition), \
            f"{path.name}:{call.lineno}: skipif({condition}) is not a missing browser, CUDA device or package"
    assert not [c.lineno for c in calls(tree, "skip") if ast.get_source_segment(source, c.func).startswith(
        "pytest")], f"{path.name}: pytest.skip (only the kinds above may skip)"
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in
                ("skip", "xfail") and ast.unparse(node).startswith("pytest.mark")], \
        f"{path.name}: pytest.mark.skip / xfail (a test passes, fails or skips for a missing package, browser or GPU)"


def test_the_rule_refuses_what_is_not_a_missing_thing():
    """The conditions themselves: each allowed kind passes, a padded or a project-package condition does not."""
    assert allowed_condition("not torch.cuda.is_available()")
    assert allowed_condition('importlib.util.find_spec("torchmetrics") is None')
    assert not allowed_condition('importlib.util.find_spec("pipelines") is None')
    assert not allowed_condition('importlib.util.find_spec("wandb") is not None')
    assert not allowed_condition("not torch.cuda.is_available() or True")
    assert not allowed_condition("torch.cuda.is_available()")
