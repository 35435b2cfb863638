"""``python -m report``: the whole homework answer from one command (Markdown, HTML and, with --pdf, PDF).

In the assignment's order: Q1 (diffusion) theory, then each implementation item with its figure or table and a
paragraph of analysis filled in from the numbers of this run; Q2 (score-based models) the same, on the
student's own mixture. The theory is docs/theory.md itself (one source). Every part runs as the command a user
would type, and the report shows that command under its figure or table. Numbers that need hours of CPU (the
N = 1,000 tables of the fast samplers and of the prior) are read from the committed results, and say so.

    python -m report [--pipeline pretrained/sprites_ddpm] [--student_id N] [--out outputs/report] [--quick]
        [--retrain] [--pdf]
"""

from __future__ import annotations

import json
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
              f"{' (quick mode: tiny sample counts, numbers not meaningful)' if args.quick else ''}."
              " Every figure and table names the command that made it; the commands are in the appendix.")
    hw.run(*q1.timing_command(hw))  # first and alone: a timing shares the CPU with nothing
    hw.run.start(*q1.fid_command(hw))  # the longest part, on one core while the others run on the other
    try:
        q2.score_toy_run(hw)  # Q2's runs first, so that all the other work shares the FID run's time
        hw.run(*q2.why_noise_command(hw))
        for part in (glossary, q1.theory, q1.schedule, q1.forward, q1.training, q1.sampling, q1.timing, q1.fid,
                     q2.theory, q2.implementation):
            part(hw)
    finally:
        hw.run.stop()
    hw.environment(start)
    md, page = hw.r.write(args.out)
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
                      f"({took / 60:.0f} min) |\n")  # the README quotes it (bench/doc_tables.py)
    print(f"wrote {rel(md)}, {rel(page)}{' and report.pdf' if args.pdf else ''} in {took:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

