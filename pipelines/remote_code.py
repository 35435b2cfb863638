"""The code a saved folder carries, so that diffusers loads our pipelines where this package is not installed:

    DiffusionPipeline.from_pretrained(folder, custom_pipeline="pipeline_sprites_ddim", trust_remote_code=True)

The folder's ``model_index.json`` names diffusers' stock ``DDPMPipeline`` (:class:`pipelines.common.SavedFolderMixin`),
so without ``custom_pipeline`` diffusers loads it with its own code; the carried files are only read when asked for.
They are the course pipelines (:data:`FOLDER_PIPELINES`) and the modules they import, nothing that only writes.

diffusers' layout for a custom pipeline (``_resolve_custom_pipeline_and_cls`` and ``get_cached_module_file`` in
diffusers 0.42): ``custom_pipeline="module"`` finds ``module.py`` at the top of the folder, whose one
``DiffusionPipeline`` subclass is the pipeline; the modules it needs lie beside it (flat: no packages) and are
imported relatively, ``from .x import y``. From a local folder diffusers copies into its module cache
(``HF_MODULES_CACHE/diffusers_modules/local``, shared by every local custom pipeline) only the files the pipeline
module imports *itself*, so each pipeline file here imports every module of its closure directly, and our helper
modules carry a ``sprites_`` prefix there to keep clear of other pipelines' ``common.py``.

The files are made at save time from this package's own modules, never kept by hand: ``from pipelines.X import``
becomes ``from .sprites_X import`` (pipeline modules keep their names, ``pipeline_sprites_ddpm`` ...), a pipeline
file gets one import line for each module of its closure it does not import itself, and any other import-like
line naming a project package is refused (diffusers' import check would try to import it).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from pipelines.atomic import write_text_atomic

PACKAGE = "pipelines"
FOLDER_PIPELINES = ("pipeline_sprites_ddpm", "pipeline_sprites_ddim")  # the pipelines a saved folder's code loads
PROJECT_PACKAGES = ("pipelines", "sprites", "training", "evaluation", "bench", "report", "score_toy")
HELPER_PREFIX = "sprites_"
HEADER = ("# Written by spritediff's save_pretrained from its pipelines/{module}.py, imports made relative\n"
          "# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.\n")
COMPLETION = ("\n# diffusers copies into its module cache only the modules a pipeline file imports itself; the rest of "
              "this one's:\n")
# the patterns diffusers' dynamic_modules_utils applies to every line (docstrings too)
RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.(\S+)\s+import", re.MULTILINE)
ABSOLUTE_IMPORTS = (re.compile(r"^\s*import\s+(\S+)\s*$", re.MULTILINE),
                    re.compile(r"^\s*from\s+(\S+)\s+import", re.MULTILINE))


class RemoteCodeError(ValueError):
    """A module of the package cannot be written in diffusers' custom-pipeline layout; the message says why."""


def file_stem(module: str) -> str:
    """The name module ``module`` of the package has in a saved folder."""
    return module if module.startswith("pipeline_") else HELPER_PREFIX + module


def package_module(stem: str) -> str:
    """The package module of the file ``stem`` of a saved folder (the inverse of :func:`file_stem`)."""
    return stem[len(HELPER_PREFIX):] if stem.startswith(HELPER_PREFIX) else stem


def _here() -> Path:
    return Path(__file__).resolve().parent


def standalone_source(module: str) -> str:
    """The text of package module ``module`` for a saved folder: every ``from pipelines.X import`` made relative."""
    path = _here() / f"{module}.py"
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            parts = node.module.split(".")
            line = lines[node.lineno - 1]
            new, count = re.subn(rf"\bfrom\s+{PACKAGE}\.{parts[-1]}\b", f"from .{file_stem(parts[-1])}", line, count=1)
            if len(parts) != 2 or count != 1:
                raise RemoteCodeError(f"{path}:{node.lineno}: write `from {PACKAGE}.MODULE import NAME` on one line "
                                      "so it can be made relative for a saved folder")
            lines[node.lineno - 1] = new
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            raise RemoteCodeError(f"{path}:{node.lineno}: `import {PACKAGE}...` cannot be made relative for a saved "
                                  f"folder; write `from {PACKAGE}.MODULE import NAME`")
    return HEADER.format(module=module) + "".join(lines)


def relative_imports(text: str) -> list[str]:
    """The package modules ``text`` imports relatively, as diffusers finds them (every matching line)."""
    return sorted({package_module(m) for m in RELATIVE_IMPORT.findall(text)})


def pipeline_files(roots: tuple[str, ...] = FOLDER_PIPELINES) -> dict[str, str]:
    """``{file name: text}`` of the pipeline modules ``roots`` and of every module they need, in diffusers'
    custom-pipeline layout: what ``save_pretrained`` writes into a folder."""
    texts: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in texts:
            texts[name] = standalone_source(name)
            todo += relative_imports(texts[name])
    for root in roots:
        closure, todo = set(), list(relative_imports(texts[root]))
        while todo:
            name = todo.pop()
            if name not in closure:
                closure.add(name)
                todo += relative_imports(texts[name])
        missing = sorted(closure - set(relative_imports(texts[root])) - {root})
        if missing:
            texts[root] += COMPLETION + "".join(f"from .{file_stem(m)} import __name__ as _{file_stem(m)}  "
                                                "# noqa: E402, F401\n" for m in missing)
    for name, text in texts.items():
        found = {m.split(".")[0] for pattern in ABSOLUTE_IMPORTS for m in pattern.findall(text)}
        if found & set(PROJECT_PACKAGES):
            raise RemoteCodeError(f"{file_stem(name)}.py: a line imports {sorted(found & set(PROJECT_PACKAGES))} "
                                  "(a docstring example?); diffusers would try to import it where spritediff is "
                                  "absent. Reword the line or make the import relative")
    return {f"{file_stem(name)}.py": text for name, text in sorted(texts.items())}


def write_pipeline_code(folder: str | Path) -> list[Path]:
    """Write :func:`pipeline_files` into a saved ``folder`` (each file whole or not at all), removing the
    generated ``*.py`` files of an earlier save that are no longer part of it; return the files written."""
    folder = Path(folder)
    files = pipeline_files()
    for old in folder.glob("*.py"):
        if old.name not in files and old.read_text().startswith(HEADER.split("{")[0]):
            old.unlink()
    return [write_text_atomic(folder / name, text) for name, text in files.items()]
