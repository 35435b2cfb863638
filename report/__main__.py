"""``python -m report``: the whole homework answer from one command (Markdown, HTML and, with --pdf, PDF).

One heading per question of the course, in its order (report/course.py): Q1 theory 1-5 and implementation
1-7, Q2 theory 1-5 and implementation 1-5; each opens with its direct answer, then its derivation, figure or
table. The derivations are docs/theory.md itself (one source); the extras are appendices. Every part runs as the
command a user would type, and the report shows that command under its figure or table; the run's results files
are kept beside the report (results/). Numbers that need hours of CPU (the N = 1,000 tables of the fast samplers
and of the prior, ES-DDPM) are read from the committed results when they were measured on the same model.

    python -m report [--pipeline pretrained/sprites_ddpm] [--student_id N] [--out outputs/report] [--quick]
        [--retrain] [--pdf]
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import yaml

from pipelines.atomic import write_text_atomic
from report import q1, q2
from report.glossary import glossary
from report.homework import DEFAULT_PIPELINE, ROOT, Homework, load_settings, rel
from sprites.cli import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m report", description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", type=Path, default=DEFAULT_PIPELINE, help="the sprites pipeline folder to report on")
    p.add_argument("--student_id", type=int, default=None,
                   help="your student number: Q2's mixture (default: the placeholder of configs/score_toy.yaml)")
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "report")
    p.add_argument("--quick", action="store_true", help="tiny sample counts: a check of the machinery, not numbers")
    p.add_argument("--retrain", action="store_true",
                   help="train configs/sprites_ddpm.yaml from scratch first (about 2 hours on 2 CPU cores)")
    p.add_argument("--pdf", action="store_true", help="also print report.pdf with headless Chromium")
    args = p.parse_args(argv)
    from sprites.data import default_data_path, holds_sprites, no_default_data_error

    if not holds_sprites(default_data_path()):  # the FID parts need the sprites: stop now, not minutes later
        print(f"error: {no_default_data_error()}", file=sys.stderr)
        return 2
    if args.pdf:
        from report.browser import find_chromium

        if find_chromium() is None:
            print("error: --pdf needs Chromium (apt-get install chromium)", file=sys.stderr)
            return 2
    if args.student_id is None:
        args.student_id = int(yaml.safe_load((ROOT / "configs" / "score_toy.yaml").read_text())["student_id"])
    s = load_settings(args.quick)
    work = args.out.with_name(args.out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    hw = Homework(args, s, work)
    if args.retrain:
        train_dir = work / "retrain"
        hw.run("accelerate", "launch", "--quiet", "--config_file", "accelerate_config.yaml", "training/train.py",
               "--config", "configs/sprites_ddpm.yaml", "--output_dir", rel(train_dir), "--resume", "latest")
        hw.pipeline = train_dir / "pipeline"
    if not (hw.pipeline / "model_index.json").is_file():
        print(f"error: {hw.pipeline} is not a pipeline folder (no model_index.json); pass --pipeline or --retrain",
              file=sys.stderr)
        return 2
    hw.r.text(f"Generated {time.strftime('%Y-%m-%d %H:%M %Z')} from `{rel(hw.pipeline)}`, student number "
              f"{args.student_id}{q2.student_note(args.student_id)}"
              f"{' (quick mode: tiny sample counts, numbers not meaningful)' if args.quick else ''}. One heading "
              "per question of the course, in its order, each opening with its answer; terms the course does not "
              "define are in @app:glossary, and every figure and table names the command that made it "
              "(@app:commands).")
    hw.run(*q1.timing_command(hw))  # first and alone: a timing shares the CPU with nothing of the report
    hw.run.start(*q1.fid_command(hw))  # the longest part, on one core while the others run on the other
    try:
        q2.score_toy_run(hw)  # Q2's runs first, so that all the other work shares the FID run's time
        hw.run(*q2.why_noise_command(hw))
        hw.r.heading("Q1. Diffusion models")
        for part in (q1.theory, q1.schedule, q1.forward, q1.training, q1.ddpm_sampling, q1.ddim_sampling,
                     q1.timing, q1.fid):
            part(hw)
        hw.r.heading("Q2. Score-based models")
        q2.theory(hw)
        q2.implementation(hw)
        appendices(hw)
    finally:
        hw.run.stop()
    hw.environment(start)
    md, page = hw.r.write(args.out)
    keep_results(work, args.out / "results")
    unsourced = hw.r.unsourced_numbers()
    write_text_atomic(work / "numbers.json", json.dumps({"unsourced": unsourced}, indent=1))
    if unsourced:  # tests/test_report.py keeps this empty; a user sees it rather than a silent typo
        print(f"warning: numbers in the prose that no result of this run wrote: {', '.join(unsourced)}",
              file=sys.stderr)
    if args.pdf:
        from report.browser import print_pdf

        print_pdf(page, args.out / "report.pdf", work / "chromium-profile")
    took = time.perf_counter() - start
    write_text_atomic(args.out / "run.md", "| generated | from | student number | mode | PDF | took |\n"
                      "|---|---|---:|---|---|---:|\n"
                      f"| {time.strftime('%Y-%m-%d %H:%M %Z')} | `{rel(hw.pipeline)}` | {args.student_id} | "
                      f"{'quick' if args.quick else 'full'} | {'yes' if args.pdf else 'no'} | {took:,.0f} s "
                      f"({took / 60:.0f} min) |\n")  # the README quotes it (report/doc_tables.py)
    print(f"wrote {rel(md)}, {rel(page)}{' and report.pdf' if args.pdf else ''} in {took:.0f} s")
    print(last_lines(args.student_id))
    return 0


def appendices(hw: Homework) -> None:
    """Everything beside the course's questions: the glossary, the checks, the prior at T, the extras."""
    glossary(hw)
    checks(hw)
    prior_appendix(hw)
    q1.fast_samplers(hw)
    q2.appendices(hw)
    editing_appendix(hw)


def checks(hw: Homework) -> None:
    hw.r.appendix("checks and extensions of the derivations", "checks")
    hw.r.text("What the theory answers leave out: further steps of some derivations, and the tests that check each "
              "numerically with the package's own code (`pytest tests/test_theory_diffusion.py "
              "tests/test_theory_score.py`).")
    for label, text in hw.checks:
        hw.r.markdown(f"**{label}.** {text}", hw.docs, source_dir=ROOT / "docs")


def prior_appendix(hw: Homework) -> None:
    from report.homework import MOVED, item_references, move_out, split_checks

    title, body = hw.theory[10]
    hw.r.appendix(title[0].lower() + title[1:], "prior")
    derivation, _ = move_out(split_checks(body)[0], MOVED["prior"])
    hw.r.markdown(item_references(derivation), hw.docs, source_dir=ROOT / "docs")


EDITING_PARTS = (  # (the bullet's name in docs/editing.md's theory section, its table, its figure)
    ("Reconstruction", "figures/editing/reconstruction.md", "figures/editing/reconstruction.png"),
    ("Interpolation", None, "figures/editing/interpolation.png"),
    ("Inpainting", "figures/editing/inpainting.md", "figures/editing/inpainting.png"),
)


def editing_appendix(hw: Homework) -> None:
    """DDIM's inversion, interpolation and inpainting on the same model: for each, docs/editing.md's sentences tying
    it to the theory answer on DDIM, its measured table and its figure (the whole page: docs/editing.md)."""
    docs = ROOT / "docs"
    page = docs / "editing.md"
    if not page.is_file():
        return
    theory = page.read_text().partition("## How this ties to the theory of DDIM")[2]
    bullet = re.compile(r"^- \*\*(\w+)\*\* \([^)]*\)\. (.*?)(?=^- |\Z)", flags=re.S | re.M)
    bullets = {m.group(1): " ".join(m.group(2).split()) for m in bullet.finditer(theory)}
    hw.r.appendix("editing with DDIM: inversion, interpolation and inpainting", "editing")
    hw.r.text("DDIM with eta = 0 is a deterministic map between noise and images; run backwards it encodes an image. "
              "The measurements are `python -m experiments.editing` on the same model (the page with every table: "
              "docs/editing.md).")
    for name, table, figure in EDITING_PARTS:
        parts = [f"**{name}.** {bullets[name]}"]
        if table and (docs / table).is_file():
            parts.append((docs / table).read_text().strip())
        parts.append(f"![{name.lower()}]({figure})")
        hw.r.markdown("\n\n".join(parts), hw.docs, source_dir=docs, quoted=True)


RESULTS = ("schedule.json", "forward.json", "no_noise.json", "timing.json", "why_noise.json", "fid/results.json",
           "score_toy/metrics.json")


def keep_results(work: Path, dest: Path) -> None:
    """Copy this run's results files beside the report (every number of the report has its file there)."""
    import shutil

    for name in RESULTS:
        src = work / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest / name)


def last_lines(student_id: int) -> str:
    """What the main job says last: the student number Q2 used, and how to use yours."""
    note = (" (the placeholder of configs/score_toy.yaml, not a student's)" if q2.student_note(student_id) else "")
    return (f"Q2 used student number {student_id}{note}. For your own: bash scripts/demo.sh --student_id "
            "YOUR_NUMBER")


if __name__ == "__main__":
    sys.exit(main())

