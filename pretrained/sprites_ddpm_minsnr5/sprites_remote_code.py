# Written by spritediff's save_pretrained from its pipelines/remote_code.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The pipelines' own code in every saved folder, so that diffusers loads a folder or Hub repo without this package.

    DiffusionPipeline.from_pretrained(folder_or_repo, trust_remote_code=True)          # the class it was saved as
    DiffusionPipeline.from_pretrained(folder_or_repo, custom_pipeline="pipeline_sprites_ddim", trust_remote_code=True)

diffusers' layout for a custom pipeline (``_resolve_custom_pipeline_and_cls`` and ``get_cached_module_file`` in
diffusers 0.42): ``model_index.json`` names it as ``"_class_name": [module, class]`` and ``module.py`` lies at the
top of the folder; the modules it needs lie beside it (flat: no packages) and are imported relatively, ``from .x
import y``. From a local folder diffusers copies into its module cache (``HF_MODULES_CACHE/diffusers_modules/
local``, shared by every local custom pipeline) only the files the pipeline module imports *itself*, so each
pipeline file here imports every module of its closure directly, and our helper modules carry a ``sprites_``
prefix there to keep clear of other pipelines' ``common.py``.

The files are made at save time from this package's own modules, never kept by hand: ``from pipelines.X import``
becomes ``from .sprites_X import`` (pipeline modules keep their names, ``pipeline_sprites_ddpm`` ...), a pipeline
file gets one import line for each module of its closure it does not import itself, and any other import-like
line naming a project package is refused (diffusers' import check would try to import it). A pipeline loaded from
such a folder, without the package, saves again the files it was loaded from (its own class's closure).

Note: with ``[module, class]`` in ``model_index.json`` every ``from_pretrained`` in diffusers, the stock
``DDPMPipeline``'s included, goes to the custom code; our classes read such a folder as their own
(:meth:`RemoteCodeMixin._dict_from_json_file`), and diffusers' stock pipelines are built from the folder's parts.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from .sprites_atomic import write_text_atomic

PACKAGE = "pipelines"
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


def in_package() -> bool:
    """True when this is the package's module, False in a copy loaded by diffusers from a saved folder."""
    return __name__ == f"{PACKAGE}.remote_code"


def _here() -> Path:
    return Path(__file__).resolve().parent


def pipeline_modules() -> list[str]:
    """The package's pipeline modules (``pipeline_*.py``), each holding one pipeline class."""
    return sorted(p.stem for p in _here().glob("pipeline_*.py"))


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


def _copied_source(module: str) -> str:
    path = _here() / f"{file_stem(module)}.py"
    if not path.is_file():
        raise RemoteCodeError(f"{path.name} is not beside {Path(__file__).name} in {path.parent}; save from a "
                              "pipeline loaded with its whole folder, or install spritediff")
    return path.read_text()


def relative_imports(text: str) -> list[str]:
    """The package modules ``text`` imports relatively, as diffusers finds them (every matching line)."""
    return sorted({package_module(m) for m in RELATIVE_IMPORT.findall(text)})


def pipeline_files(module: str | None = None) -> dict[str, str]:
    """``{file name: text}`` of pipeline module ``module`` (None: every pipeline module; needs the package) and of
    every module it needs, in diffusers' custom-pipeline layout."""
    if module is None and not in_package():
        raise RemoteCodeError("pipeline_files(None) needs the spritediff package; name the pipeline module")
    roots = pipeline_modules() if module is None else [module]
    source = standalone_source if in_package() else _copied_source
    texts: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in texts:
            texts[name] = source(name)
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


def pipeline_class_entry(cls: type) -> list[str]:
    """``[module, class]`` for ``model_index.json``: the first of our pipeline classes in ``cls``'s MRO."""
    here = __name__.rpartition(".")[0]
    for c in cls.__mro__:
        package, _, stem = c.__module__.rpartition(".")
        if package == here and stem.startswith("pipeline_"):
            return [stem, c.__name__]
    raise RemoteCodeError(f"{cls.__name__} derives from none of spritediff's pipeline classes")


def write_pipeline_code(folder: str | Path, cls: type) -> list[Path]:
    """Write the pipeline modules into a saved ``folder`` and name ``cls`` in its ``model_index.json`` as
    ``[module, class]``; return the files written. Each file appears whole or not at all."""
    folder = Path(folder)
    entry = pipeline_class_entry(cls)
    written = []
    for name, text in pipeline_files(None if in_package() else entry[0]).items():
        written.append(write_text_atomic(folder / name, text))
    index = folder / "model_index.json"
    config = json.loads(index.read_text())
    config["_class_name"] = entry
    write_text_atomic(index, json.dumps(config, indent=2, sort_keys=True) + "\n")
    return [*written, index]


class RemoteCodeMixin:
    """``save_pretrained`` also writes the pipeline's code (:func:`write_pipeline_code`); ``from_pretrained`` of
    our classes reads a folder that names ``[module, class]`` as a folder of their own (the code is for diffusers'
    ``DiffusionPipeline``)."""

    def save_pretrained(self, save_directory, *args: Any, push_to_hub: bool = False, **kwargs: Any) -> Any:
        """diffusers' ``save_pretrained``, then the code; ``push_to_hub=True`` uploads the complete folder."""
        hub = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "private", "create_pr", "token") if k in kwargs}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        write_pipeline_code(save_directory, type(self))
        if push_to_hub:
            self.push_to_hub(hub.pop("repo_id", Path(save_directory).name), **hub)
        return result

    @classmethod
    def _dict_from_json_file(cls, json_file):
        config = super()._dict_from_json_file(json_file)
        name = config.get("_class_name")
        if isinstance(name, list | tuple) and len(name) == 2:
            config["_class_name"] = name[1]  # the class the caller chose loads the folder, as with a plain name
        return config
