"""Ways to run the UNet on a CPU, applied to the UNet before it goes into a pipeline.

    from pipelines.unet_runtime import OnnxUNet, prepare_unet
    unet = prepare_unet(pipe.unet, channels_last=True)   # or compile=True
    pipe = SpritesDDPMPipeline(unet=OnnxUNet(pipe.unet), scheduler=pipe.scheduler)   # onnxruntime

All are off by default: ``python -m experiments.speed`` measures each against the plain UNet on this machine and
``docs/speed.md`` holds what they gave. The pipelines themselves already run under ``torch.inference_mode``
and precompute their per-step coefficients in float64 once per call (no ``scheduler.step``). Samples do not
depend on any option beyond float rounding (``tests/test_speed_options.py``).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
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


class _Forward(torch.nn.Module):
    """unet(x, t) -> eps as a plain tensor (what the ONNX exporter traces)."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, return_dict=False)[0]


class OnnxUNet:
    """An unconditional ``UNet2DModel`` exported to ONNX and run by onnxruntime, callable like the UNet.

    ``OnnxUNet(unet)(x, t).sample`` equals ``unet(x, t).sample`` within float rounding; it takes the place of the
    UNet in ``SpritesDDPMPipeline`` / ``SpritesDDIMPipeline`` (CPU, float32, any batch size). The export takes a
    second or two; the graph is kept in ``path`` (default: a temporary folder). Needs ``onnx`` and
    ``onnxruntime`` (``pip install -e ".[onnx]"``).

    Args:
        unet: the UNet to export (left unchanged).
        threads: onnxruntime intra-op threads (default: ``torch.get_num_threads()``).
        path: where to write the ``.onnx`` file.
    """

    def __init__(self, unet, threads: int | None = None, path: str | Path | None = None):
        import onnxruntime as ort

        if unet.config.get("num_class_embeds") is not None:
            raise ValueError("OnnxUNet: class-conditional UNets are not supported (class labels, soft mixes and "
                             "guidance hook into the torch module); sample them with the torch UNet")
        self.config = unet.config
        self.dtype, self.device = torch.float32, torch.device("cpu")
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="spritediff-onnx-")
            path = Path(self._tmp.name) / "unet.onnx"
        self.path = Path(path)
        size, channels = unet.config.sample_size, unet.config.in_channels
        example = (torch.zeros(2, channels, size, size), torch.zeros(2, dtype=torch.long))
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer warns about diffusers' shape checks and batch-size branches; the graph does not need them
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(_Forward(unet).eval(), example, str(self.path), input_names=["sample", "timestep"],
                              output_names=["eps"], dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"}},
                              dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, sample: torch.Tensor, timestep, class_labels=None, return_dict: bool = True):
        from diffusers.models.unets.unet_2d import UNet2DOutput

        if class_labels is not None:
            raise ValueError("OnnxUNet: this UNet is unconditional; class_labels must be None")
        x = sample.detach().to(torch.float32).contiguous().numpy()
        t = np.broadcast_to(np.asarray(timestep.cpu() if isinstance(timestep, torch.Tensor) else timestep,
                                       dtype=np.int64).reshape(-1), (len(x),)).copy()
        eps = torch.from_numpy(self.session.run(None, {"sample": x, "timestep": t})[0])
        return UNet2DOutput(sample=eps) if return_dict else (eps,)
