"""The trainer with a fault injected, for the fault tests only (the production trainer holds no test hook).

    python -m tests.fault_injection FAULT [training.train arguments ...]

FAULT is ``kill@STEP`` (SIGKILL once step STEP, with its logging, evaluation, checkpoint and samples, is done),
``kill-in-save@STEP`` (SIGKILL inside the checkpoint save of step STEP, after accelerate wrote its files into the
temporary folder and before the rename), ``nan@STEP`` (the loss of step STEP is NaN; steps count from 1) or
``pause@STEP`` (once step STEP is done, print ``paused at step STEP`` to stderr and sleep until killed: a run
that is alive and holds its folder). The
faults are monkeypatched onto training.train's functions, then its ``main`` runs as ``python -m training.train``
would.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(fault: str) -> None:
    """Patch training.train (and accelerate's save_state) so that ``fault`` happens."""
    import accelerate

    import training.train as train

    match = re.fullmatch(r"(kill|kill-in-save|nan|pause)@(\d+)", fault)
    if not match:
        raise SystemExit(f"fault must be kill@N, kill-in-save@N, nan@N or pause@N, got {fault!r}")
    kind, at = match.group(1), int(match.group(2))

    if kind == "pause":
        train_step = train.train_step

        def pause(run, step):
            if step == at:
                print(f"paused at step {step}", file=sys.stderr, flush=True)
                while True:  # until killed
                    time.sleep(60)
            return train_step(run, step)

        train.train_step = pause
    elif kind == "kill":  # train_step(run, step) starts step step + 1: everything of step `step` is done
        train_step = train.train_step
        train.train_step = lambda run, step: kill() if step == at else train_step(run, step)
    elif kind == "kill-in-save":
        save_state = accelerate.Accelerator.save_state

        def save_then_kill(self, output_dir=None, *args, **kwargs):
            result = save_state(self, output_dir, *args, **kwargs)
            if Path(output_dir).name.startswith(f".checkpoint-{at:07d}."):
                kill()
            return result

        accelerate.Accelerator.save_state = save_then_kill
    else:  # nan: make_batch(cfg, step, ...) runs first in train_step; the loss of that step is then NaN
        make_batch, forward_loss, current = train.make_batch, train.forward_loss, {}

        def remember_step(cfg, step, *args, **kwargs):
            current["step"] = step
            return make_batch(cfg, step, *args, **kwargs)

        def nan_loss(*args, **kwargs):
            loss = forward_loss(*args, **kwargs)
            return loss * float("nan") if current.get("step") == at - 1 else loss

        train.make_batch, train.forward_loss = remember_step, nan_loss


def main(argv: list[str]) -> int:
    if not argv:
        raise SystemExit(__doc__)
    install(argv[0])
    import training.train as train

    return train.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
