"""The Inception-v3 of FID, written in plain torch (torchvision is not needed), with pytorch-fid's weights.

Standard FID uses the 2048 pool features of the TensorFlow Inception-v3 graph of 2015-12-05, which pytorch-fid
ported to a torch state dict ``pt_inception-2015-12-05-6726825d.pth``. That graph differs from torchvision's
Inception-v3 in three places, reproduced here: the average pools inside the A, C and first E blocks do not count
the zero padding, and the last E block uses a 3x3 *max* pool in its pool branch. The module and parameter names
follow torchvision's, so the state dict loads as it is.

Pre-processing as pytorch-fid does it: images in [0, 1] are resized to 299x299 with bilinear interpolation
(``align_corners=False``, no anti-aliasing) and scaled to [-1, 1]. pytorch-fid reads each PNG as RGB and
divides by 255, so a uint8 sprite ``u`` enters as ``u / 255``.

No file is ever downloaded. :func:`load_fid_inception` looks for the weights at an explicit path, then at
``$SPRITEDIFF_INCEPTION_WEIGHTS``, then in the torch hub cache where pytorch-fid keeps them
(``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``), and otherwise raises
:class:`InceptionWeightsNotFound` saying where to put the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FID_WEIGHTS_FILENAME",
    "FIDInceptionV3",
    "InceptionWeightsNotFound",
    "extract_inception_features",
    "find_fid_inception_weights",
    "load_fid_inception",
]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_ENV = "SPRITEDIFF_INCEPTION_WEIGHTS"
INPUT_SIZE = 299


class InceptionWeightsNotFound(FileNotFoundError):
    """pytorch-fid's Inception weights are not on this machine; the message says where to put them."""


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as in the TensorFlow graph), ReLU."""

    def __init__(self, c_in: int, c_out: int, **conv: Any):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **conv)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """The FID graph's 3x3 stride-1 average pool: padding is excluded from the mean."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pool branches (64 + 64 + 96 + pool_features channels)."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3, strided double 3x3 and max pool (384 + 96 + c_in channels)."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (4 x 192 channels)."""

    def __init__(self, c_in: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_3x3(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (320 + 192 + c_in channels)."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 branches (320 + 768 + 768 + 192 = 2048 channels).

    ``pool="avg"`` (padding excluded) is the FID graph's Mixed_7b; ``pool="max"`` its Mixed_7c.
    """

    def __init__(self, c_in: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        s = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = _avg_pool_3x3(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 up to its 2048-d global average pool, as pytorch-fid uses it for FID.

    ``forward`` takes float images (N, 3, H, W) in [0, 1] (any size), resizes them to 299x299 (bilinear,
    ``align_corners=False``), scales to [-1, 1] and returns the pool features (N, 2048). The weights are
    random until a state dict is loaded (:func:`load_fid_inception`); random weights are for tests only.
    """

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self._init_random()
        self.eval()

    def _init_random(self) -> None:
        """A deterministic-under-``torch.manual_seed`` random init whose activations neither die nor explode."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images of any size -> 299x299 in [-1, 1], as pytorch-fid does."""
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images (N, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        x = self.preprocess(x.float())
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Batch norm always uses its stored statistics: the network is a fixed feature extractor."""
        return super().train(False)

    def load_fid_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load pytorch-fid's state dict; its classifier (``fc.*``) and BN batch counters are not needed.

        Every other key must match exactly, so a wrong or truncated file fails loudly instead of giving
        a plausible-looking FID.
        """
        ignored = ("fc.", "AuxLogits.")
        kept = {k: v for k, v in state_dict.items()
                if not k.startswith(ignored) and not k.endswith("num_batches_tracked")}
        own = {k for k in self.state_dict() if not k.endswith("num_batches_tracked")}
        missing, unexpected = sorted(own - kept.keys()), sorted(kept.keys() - own)
        if missing or unexpected:
            raise ValueError(f"not an FID Inception-v3 state dict: {len(missing)} missing keys (e.g. {missing[:3]}), "
                             f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        result = self.load_state_dict(kept, strict=False)
        bad = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if bad or result.unexpected_keys:  # cannot happen after the check above; kept as a guard
            raise ValueError(f"state dict mismatch: missing {bad[:3]}, unexpected {result.unexpected_keys[:3]}")


def _hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's default: ``$XDG_CACHE_HOME/torch`` or ``~/.cache/torch``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_fid_inception_weights(path: str | Path | None = None) -> Path:
    """The weights file to use: ``path`` if given, else ``$SPRITEDIFF_INCEPTION_WEIGHTS``, else the hub cache.

    Raises :class:`InceptionWeightsNotFound` (a one-line message naming the places looked at) when absent.
    """
    if path is not None:
        candidates = [Path(path).expanduser()]
    elif os.environ.get(WEIGHTS_ENV):
        candidates = [Path(os.environ[WEIGHTS_ENV]).expanduser()]
    else:
        candidates = [_hub_checkpoint_dir() / FID_WEIGHTS_FILENAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = candidates[0]
    raise InceptionWeightsNotFound(
        f"FID Inception weights not found at {where}; nothing is downloaded here: copy pytorch-fid's "
        f"{FID_WEIGHTS_FILENAME} (from a machine where pytorch-fid has run, in its torch hub cache) to "
        f"{_hub_checkpoint_dir() / FID_WEIGHTS_FILENAME}, or pass its path (--inception_weights / "
        f"${WEIGHTS_ENV}); or use the offline sprite-FID instead")


def load_fid_inception(path: str | Path | None = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """FID Inception-v3 with pytorch-fid's weights from a local file (see :func:`find_fid_inception_weights`)."""
    weights = find_fid_inception_weights(path)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types; all mean a bad file
        raise ValueError(f"{weights}: cannot read it as a torch state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    net = FIDInceptionV3()
    try:
        net.load_fid_state_dict(state)
    except ValueError as exc:
        raise ValueError(f"{weights}: {exc}") from None
    return net.to(device).eval()


@torch.no_grad()
def extract_inception_features(images: Any, net: FIDInceptionV3, batch_size: int = 50,
                               value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Inception pool features (N, 2048) in float64 of sprites given as the sprite functions take them.

    Images go through the uint8 grid first (as a PNG would) and enter the network as ``u / 255``, the values
    pytorch-fid reads from the exported PNG files.
    """
    from evaluation.features import to_uint8_nhwc

    arr = to_uint8_nhwc(images, value_range)
    device = next(net.parameters()).device
    out = []
    for i in range(0, arr.shape[0], batch_size):
        batch = torch.from_numpy(arr[i:i + batch_size]).permute(0, 3, 1, 2).float().div(255.0).to(device)
        out.append(net(batch).cpu().double())
    if not out:
        return np.zeros((0, FIDInceptionV3.num_features))
    return torch.cat(out).numpy()
