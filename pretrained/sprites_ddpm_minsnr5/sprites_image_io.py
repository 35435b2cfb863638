# Written by spritediff's save_pretrained from its pipelines/image_io.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""Images and masks given to the editing pipelines (inversion, inpainting, image-to-image), and their output.

An image batch is what the sampling pipelines return: a PIL image or a list of them, a float array in [0, 1] of
shape (N, H, W, C) or (H, W, C) (``output_type="np"``), or a float tensor in [0, 1] of shape (N, C, H, W)
(``output_type="pt"``). uint8 arrays are read as 0..255. A mask follows diffusers' ``RePaintPipeline``: 1 keeps the
pixel, 0 fills it; PIL masks are read as grey, every mask is thresholded at 0.5 and is shared by all channels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import torch


def _unet_shape(unet) -> tuple[int, int, int]:
    size = unet.config.sample_size
    return (unet.config.in_channels, *((size, size) if isinstance(size, int) else size))


def _as_array(images: Any, name: str, grey: bool) -> np.ndarray:
    """``images`` as a float64 array (N, H, W, C) in [0, 1] (channels last), checked."""
    if isinstance(images, PIL.Image.Image):
        images = [images]
    if isinstance(images, list | tuple) and images and all(isinstance(i, PIL.Image.Image) for i in images):
        array = np.stack([np.asarray(i.convert("L" if grey else "RGB")) for i in images]).astype(np.float64) / 255
        return array[..., None] if array.ndim == 3 else array
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4:
            raise ValueError(f"{name}: a tensor must have shape (N, C, H, W) in [0, 1], got {tuple(images.shape)}")
        images = images.detach().cpu().movedim(1, -1).double().numpy()
    elif not isinstance(images, np.ndarray):
        raise ValueError(f"{name} must be PIL images, an array (N, H, W, C) or a tensor (N, C, H, W) in [0, 1], got "
                         f"{type(images).__name__}")
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError(f"{name}: an array must have shape (N, H, W, C) in [0, 1], got {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: dtype {array.dtype}; give floats in [0, 1] (or uint8)")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ValueError(f"{name}: values must lie in [0, 1] (as output_type='np' returns), found "
                         f"[{np.nanmin(array):.3g}, {np.nanmax(array):.3g}]; for [-1, 1] data pass (x + 1) / 2")
    return array.astype(np.float64)


def read_images(images: Any, unet, name: str = "images") -> torch.Tensor:
    """An image batch (see the module doc) as a float32 tensor (N, C, H, W) in [0, 1] that fits ``unet``; a one-line
    ``ValueError`` for a wrong type, range, channel count or size."""
    channels, h, w = _unet_shape(unet)
    array = _as_array(images, name, grey=channels == 1)
    if array.shape[1:] != (h, w, channels):
        raise ValueError(f"{name}: images of shape {array.shape[1:]} (H, W, C); this UNet takes ({h}, {w}, {channels})"
                         f"; resize them (e.g. PIL's resize with Image.NEAREST)")
    return torch.from_numpy(array).movedim(-1, 1).float().contiguous()


def read_masks(mask_image: Any, n: int, unet) -> torch.Tensor:
    """A mask (1 keep, 0 fill; see the module doc) as a bool tensor (N, 1, H, W) for ``n`` images: one mask for all,
    or one per image. Arrays may be (H, W), (N, H, W) or (N, H, W, 1); PIL masks are read as grey."""
    _, h, w = _unet_shape(unet)
    if isinstance(mask_image, np.ndarray | torch.Tensor):
        array = np.asarray(mask_image.detach().cpu() if isinstance(mask_image, torch.Tensor) else mask_image)
        if array.ndim == 2:
            array = array[None]
        if array.ndim == 4 and array.shape[1] == 1 and array.shape[-1] != 1:
            array = array[:, 0]  # (N, 1, H, W) as a "pt" tensor
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim != 3:
            raise ValueError(f"mask_image: shape {array.shape}; give (H, W), (N, H, W) or (N, H, W, 1), 1 keep 0 fill")
        mask = _as_array(array[..., None].astype(np.float64) if array.dtype == np.bool_ else array[..., None],
                         "mask_image", grey=True)
    else:
        mask = _as_array(mask_image, "mask_image", grey=True)
    if mask.shape[1:3] != (h, w) or mask.shape[-1] != 1:
        raise ValueError(f"mask_image: masks of shape {mask.shape[1:]} (H, W, C); give one grey ({h}, {w}) mask")
    if len(mask) not in (1, n):
        raise ValueError(f"mask_image: {len(mask)} masks for {n} images; give one mask, or one per image")
    keep = torch.from_numpy(mask >= 0.5).movedim(-1, 1)
    return keep.expand(n, -1, -1, -1).contiguous()


def images_output(images: torch.Tensor, output_type: str, numpy_to_pil) -> Any:
    """Float images (N, C, H, W) in [0, 1] as "pt" (as they are), "np" (N, H, W, C) or "pil", values unchanged."""
    if output_type == "pt":
        return images
    array = images.float().cpu().movedim(1, -1).numpy()
    return array if output_type == "np" else numpy_to_pil(array)
