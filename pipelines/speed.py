"""Speed options for sampling on a CPU (issue 9), applied to the UNet before it goes into a pipeline.

    from pipelines.speed import prepare_unet
    unet = prepare_unet(pipe.unet, channels_last=True)   # or compile=True

Both are off by default: ``bench/speed.py`` measures each against the plain UNet on this machine, and
``docs/speed.md`` holds what they gave (channels-last: within noise; torch.compile: 35-140 s of compile time
per process for a few percent). The pipelines themselves already run under ``torch.inference_mode`` and
precompute their per-step coefficients in float64 once per call (no ``scheduler.step``); their samples do not
depend on either option beyond float rounding (``tests/test_speed_options.py``).
"""

from __future__ import annotations

import torch


def prepare_unet(unet, channels_last: bool = False, compile: bool = False, compile_mode: str | None = None):
    """Return ``unet`` (the same module, changed in place) with the chosen options.

    Args:
        unet: a ``UNet2DModel``.
        channels_last: store the conv weights as NHWC (``torch.channels_last``); inputs may stay NCHW.
        compile: ``torch.compile`` the module's forward (``nn.Module.compile``, in place: the object keeps its
            class, ``config`` and weights). The first call compiles (tens of seconds to minutes on a CPU).
        compile_mode: passed to ``torch.compile`` (None: its default).
    """
    if channels_last:
        unet.to(memory_format=torch.channels_last)
    if compile:
        unet.compile(mode=compile_mode, dynamic=False)
    return unet
