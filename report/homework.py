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


# A table docs/theory.md quotes from a results file (report/doc_tables.py): the report makes its own from the rows.
QUOTED_TABLE = re.compile(r"<!-- table: \S+ -->.*?<!-- end table -->\n?", re.S)
# The report's question for each item of docs/theory.md (item 10, the prior at T, is an appendix of the report).
THEORY_QUESTIONS = {1: "Q1 theory 1", 2: "Q1 theory 2", 3: "Q1 theory 3", 4: "Q1 theory 4", 5: "Q1 theory 5",
                    6: "Q2 theory 1", 7: "Q2 theory 2", 8: "Q2 theory 3", 9: "Q2 theory 4", 10: "@app:prior"}
CHECKED_BY = re.compile(r"^Checked by:", re.M)


def item_references(text: str) -> str:
    """docs/theory.md's "item k" as the report's own names for k (a question, or the appendix on the prior)."""
    return re.sub(r"\bitems? (\d+)\b", lambda m: THEORY_QUESTIONS.get(int(m.group(1)), m.group(0)), text)


# Parts of theory items that check or extend a derivation rather than answer the question: from the marker to the end
# of its paragraph (to the end of the item for TO_END), they move to the appendix of checks.
MOVED = {"Q1 theory 1": ("Equivalently, the mean factor",), "Q1 theory 2": ('How close is "close"?',),
         "Q1 theory 3": ("For the tiny test model",), "Q1 theory 4": ("The same holds along a strided",),
         "Q1 theory 5": ("At $T' = T$ the start is nearly pure noise",),
         "Q2 theory 1": ("In two dimensions a grid",),
         "Q2 theory 2": ("This is `score_toy.SlicedScoreMatchingLoss`.",),
         "Q2 theory 3": ("The same rescaling links",), "Q2 theory 4": ("For a finite step there is",),
         "Q2 theory 5": ("The step $\\alpha_i \\propto",), "prior": ("*Numerical check*",)}
TO_END = ("The same rescaling links", "*Numerical check*")


def move_out(body: str, markers: tuple[str, ...]) -> tuple[str, str]:
    """``body`` without the text from each marker to the end of its paragraph (or of ``body``), and that text."""
    moved = []
    for marker in markers:
        start = body.find(marker)
        if start < 0:
            raise ValueError(f"docs/theory.md no longer has {marker!r}: update report.homework.MOVED")
        end = body.find("\n\n", start)
        end = len(body) if end < 0 or marker in TO_END else end
        moved.append(body[start:end].strip())
        body = body[:start].rstrip() + body[end:]
    return body, "\n\n".join(moved)


def split_checks(body: str) -> tuple[str, str]:
    """A theory item as (derivation, its "Checked by:" paragraph, which the report moves to an appendix)."""
    m = CHECKED_BY.search(body)
    return (body, "") if m is None else (body[: m.start()].rstrip(), body[m.start():].strip())


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
        self.output: dict[tuple[str, ...], str] = {}  # what each command printed

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
        self.output[args] = output
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
        self.out_results = args.out / "results"  # where the run's results files are kept beside the report
        self.checks: list[tuple[str, str]] = []  # (question, its "Checked by:" paragraph): the appendix of checks
        self.sources: list[tuple[str, str, dict]] = []  # (what, results file, its contents): the appendix of runs

    def source(self, what: str, file: Path | str, info: dict | None = None) -> None:
        """Record that ``what`` (a table or figure, by reference) quotes the results file ``file``, written by the
        run ``info`` describes (its date and machine; None: this report's own run)."""
        if info is None:
            from sprites.machine import machine_info

            info = {"date": "this report's run", "machine": machine_info()}
        self.sources.append((what, rel(Path(file)) if Path(file).is_absolute() else str(file), info))

    def ddpm_steps(self, flag: str) -> list[str]:
        """The option that shortens DDPM in quick mode (nothing in a full report: all T steps)."""
        return [flag, str(self.s["ddpm_steps"])] if self.s.get("ddpm_steps") else []

    def json(self, name: str) -> dict:
        return json.loads((self.work / name).read_text())

    def theory_answer(self, n: int, answer: str, body: str | None = None) -> None:
        """Item ``n`` of docs/theory.md as the answer to its question: the direct ``answer`` first, then the
        derivation (``body``: a part of the item; default all of it); its checks go to the appendix of checks."""
        label = THEORY_QUESTIONS[n]
        self.question(label, answer)
        derivation, checks = split_checks(self.theory[n][1] if body is None else body)
        derivation, moved = move_out(derivation, MOVED.get(label, ()))
        checks = f"{moved}\n\n{checks}".strip() if moved else checks
        derivation = QUOTED_TABLE.sub("", item_references(derivation))
        self.r.markdown(derivation, self.docs, source_dir=ROOT / "docs")
        if checks:
            self.checks.append((label, item_references(checks)))

    def question(self, label: str, answer: str) -> None:
        """The heading of the course's question ``label`` and its direct answer (2-5 sentences)."""
        from report.course import heading

        self.r.subheading(heading(label))
        self.r.markdown(answer)

    def committed(self, folder: str) -> dict | None:
        """The committed results of docs/figures/``folder`` when they were measured on the model of this report
        (else None: a number from another model would be about another model)."""
        result = ROOT / "docs" / "figures" / folder / "results.json"
        if not result.is_file():
            return None
        info = json.loads(result.read_text())
        if (info.get("pipeline") or {}).get("unet_sha256_16") != pipeline_hash(self.pipeline):
            return None
        return info

    def environment(self, start: float) -> None:
        from report.claims import load_note

        self.r.appendix("where the numbers were measured", "machines")
        rows = [{"numbers of": what, "results file": f"`{file}`", "measured": str(info.get("date", "not recorded")),
                 "machine": load_note(info.get("machine"), self.r.num)} for what, file, info in self.sources]
        if rows:
            self.r.table(rows, "The run behind each table and figure that quotes measured numbers: its results file "
                         "(committed beside the report or in the project), when it was measured, and on what machine "
                         "with what load.", label="machines")
        self.r.table(environment(), "The machine and packages of this report's own run (the commands of the appendix "
                     "of commands); the tables of committed results above were measured by their own runs.",
                     label="environment")
        self.r.text(f"This report's run took {time.perf_counter() - start:.0f} s.")


def pipeline_hash(folder: Path) -> str | None:
    from evaluation.sampling import pipeline_info

    return pipeline_info(folder)["unet_sha256_16"]
