"""The report's running context: its settings, the command runner, and the document being written."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from report.document import Report, environment
from report.markup import theory_items
from report.numbers import Numbers, course_constants
from sprites.cli import rel  # noqa: F401  (q1, q2 and __main__ import it from here)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINE = ROOT / "pretrained" / "sprites_ddpm"
THEORY = ROOT / "docs" / "theory.md"


# A table docs/theory.md quotes from a results file (bench/doc_tables.py): the report adds it as its own, captioned.
QUOTED_TABLE = re.compile(r"<!-- table: \S+ -->.*?<!-- end table -->\n?", re.S)
# Which question of the report answers each item of docs/theory.md (item 10 is background, not a question).
THEORY_QUESTIONS = {1: "Q1.1", 2: "Q1.2", 3: "Q1.3", 4: "Q1.4", 5: "Q1.5", 6: "Q2.1", 7: "Q2.2", 8: "Q2.3", 9: "Q2.4"}


def declared_constants() -> list[float]:
    """The numbers prose may state without a results file (configs/report.yaml, ``constants``)."""
    return course_constants(ROOT, yaml.safe_load((ROOT / "configs" / "report.yaml").read_text())["constants"])


def load_settings(quick: bool) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "report.yaml").read_text())
    return {**cfg["full"], **(cfg["quick"] if quick else {})}


class Runner:
    """Runs each part as a command line from the project root, logs it, and keeps the command for the report.

    A command runs once per report: ``start`` sends one to the background (its output to a file) and the later call
    with the same arguments waits for it; a call repeated after it ran returns at once. Every command runs with
    ``threads`` OpenMP threads (commands with a ``--threads`` option set their own)."""

    def __init__(self, log: Path, threads: int):
        self.log, self.env = log, {**os.environ, "OMP_NUM_THREADS": str(threads)}
        log.write_text("")  # this run's commands only
        self.pending: dict[tuple[str, ...], tuple[subprocess.Popen, Path, float]] = {}
        self.done: set[tuple[str, ...]] = set()

    @staticmethod
    def shown(args: tuple[str, ...]) -> str:
        return shlex.join(["python", *args[1:]] if args[0] == "python" else list(args))

    @staticmethod
    def command(args: tuple[str, ...]) -> list[str]:
        return [sys.executable if args[0] == "python" else args[0], *args[1:]]

    def start(self, *args: str) -> None:
        """Run ``args`` in the background; the call ``self(*args)`` collects it."""
        print(f"[report] $ {self.shown(args)} &", flush=True)
        out = self.log.with_name(f"background-{len(self.pending)}.log")
        with out.open("w") as f:
            proc = subprocess.Popen(self.command(args), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True,
                                    env=self.env)
        self.pending[args] = (proc, out, time.perf_counter())

    def __call__(self, *args: str) -> str:
        shown = self.shown(args)
        if args in self.done:
            return shown
        if args in self.pending:
            proc, out, start = self.pending.pop(args)
            proc.wait()
            output, code = out.read_text(), proc.returncode
            out.unlink()
        else:
            print(f"[report] $ {shown}", flush=True)
            start = time.perf_counter()
            proc = subprocess.run(self.command(args), cwd=ROOT, capture_output=True, text=True, env=self.env)
            output, code = proc.stdout + proc.stderr, proc.returncode
        with self.log.open("a") as f:
            f.write(f"$ {shown}\n{output}\n[{time.perf_counter() - start:.1f} s, exit {code}]\n\n")
        if code != 0:
            tail = output.strip().splitlines()[-1:] or ["(no output)"]
            raise SystemExit(f"error: `{shown}` failed: {tail[0]} (full log: {self.log})")
        self.done.add(args)
        return shown

    def stop(self) -> None:
        """End any background command (a part failed before collecting it)."""
        for proc, _, _ in self.pending.values():
            proc.kill()
            proc.wait()


class Homework:
    """The report's parts, in the assignment's order; each runs its commands and adds its items."""

    def __init__(self, args: argparse.Namespace, settings: dict, work: Path):
        self.args, self.s, self.work = args, settings, work
        self.run = Runner(work / "commands.log", settings["threads"])
        self.r = Report("Homework 3: diffusion and score-based models, answered with spritediff",
                        numbers=Numbers(declared_constants()))
        self.docs = os.path.relpath(ROOT / "docs", args.out.resolve()) + "/"
        self.theory = theory_items(THEORY)
        self.pipeline = args.pipeline

    def ddpm_steps(self, flag: str) -> list[str]:
        """The option that shortens DDPM in quick mode (nothing in a full report: all T steps)."""
        return [flag, str(self.s["ddpm_steps"])] if self.s.get("ddpm_steps") else []

    def json(self, name: str) -> dict:
        return json.loads((self.work / name).read_text())

    def theory_answer(self, n: int, question: str) -> None:
        """Item ``n`` of docs/theory.md as the answer to ``question``; its "item k" cross-references name the
        report's question for k (or docs/theory.md for an item the report does not include)."""
        title, body = self.theory[n]
        self.r.subheading(f"{question}: {title}")
        body = re.sub(r"\bitems? (\d+)\b", lambda m: THEORY_QUESTIONS.get(int(m.group(1)),
                                                                       f"docs/theory.md item {m.group(1)}"), body)
        body = QUOTED_TABLE.sub("*(The table measured on the reported model follows this answer.)*\n", body)
        self.r.markdown(body, self.docs, source_dir=ROOT / "docs")

    def environment(self, start: float) -> None:
        self.r.heading("Environment")
        self.r.table(environment(), "Where these numbers were measured.")
        self.r.text(f"The report took {time.perf_counter() - start:.0f} s. Every command's output is in "
                    f"`{rel(self.work / 'commands.log')}`.")


def pipeline_hash(folder: Path) -> str | None:
    from evaluation.sampling import pipeline_info

    return pipeline_info(folder)["unet_sha256_16"]
