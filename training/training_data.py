"""The training data of a run and the UNet shaped to it: the image set of the config's data keys
(:func:`sprites.image_data.load_image_set`), and the UNet keywords that follow the data.

``unet.sample_size``, ``unet.in_channels`` and ``unet.out_channels`` are taken from the images unless the config
sets them; when it sets them to something else, the images are converted to fit (:func:`sprites.data.fit_images`:
resized, grey to RGB or RGB to grey) and a line says so. A conditional UNet gets one class embedding per class of the
data plus the null class of classifier-free guidance (``num_class_embeds``, written into the config only when the
data has other than the sprites' 5 classes, so the sprites' configs stay as they were). A size the UNet's down blocks
cannot halve is refused with the nearest size that works.
"""

from __future__ import annotations

from pipelines.labels import NUM_CLASSES
from sprites.data import SpritesDataError
from sprites.errors import ConfigError
from sprites.image_data import MAX_SIZE, MIN_SIZE, ImageSet, check_labels_for_conditioning, load_image_set
from training.config import TrainConfig

SHAPE_KEYS = ("sample_size", "in_channels", "out_channels")


def load_training_data(cfg: TrainConfig) -> ImageSet:
    """The image set of ``cfg``'s data keys (one source; none: the course sprites)."""
    return load_image_set(cfg.data_path, cfg.train_data_dir, cfg.dataset_name, cfg.image_column, cfg.label_column,
                          cfg.resolution)


def halvings(unet_config: dict) -> int:
    """How many times the UNet's down blocks halve the image (every block but the last downsamples)."""
    return max(0, len(unet_config.get("down_block_types", ())) - 1)


def check_halving(size: int, unet_config: dict, setting: str) -> None:
    """Refuse a square size the down blocks cannot halve down to whole pixels, naming the nearest that works."""
    factor = 2 ** halvings(unet_config)
    if size % factor == 0:
        return
    fits = [s for s in range(MIN_SIZE, MAX_SIZE + 1) if s % factor == 0]
    nearest = min(fits, key=lambda s: (abs(s - size), -s)) if fits else None
    hint = f"the nearest size that works is {nearest}: set {setting} {nearest}" if nearest else \
        "use fewer down blocks"
    raise ConfigError(f"{setting} {size}: the UNet's {halvings(unet_config) + 1} down blocks halve the image "
                      f"{halvings(unet_config)} times, so its size must be a multiple of {factor}; {hint}")


def fit_unet_to_data(cfg: TrainConfig, data: ImageSet) -> list[str]:
    """Set ``cfg.unet``'s shape keys (and ``num_class_embeds``) from ``data`` where the config leaves them; return
    the lines that say what was converted. Refuses (ConfigError / SpritesDataError) what cannot work."""
    if cfg.eval_every and not cfg.eval_feature_net and not (data.is_sprites and data.size == 16 and data.channels == 3):
        raise ConfigError(f"eval_every on {data.source} (not the course sprites) needs eval_feature_net: make one with "
                          "python -m evaluation.train_classifier on this data (docs/own_data.md), or set eval_every 0")
    given = getattr(cfg, "unet_given", frozenset(SHAPE_KEYS))
    unet, notes = cfg.unet, []
    from_data = {"sample_size": data.size, "in_channels": data.channels, "out_channels": data.channels}
    for key in SHAPE_KEYS:
        if key not in given:
            unet[key] = from_data[key]
    size = unet["sample_size"] if isinstance(unet["sample_size"], int) else None
    if size is None or unet["in_channels"] not in (1, 3) or unet.get("out_channels") != unet["in_channels"]:
        raise ConfigError(f"unet: sample_size must be one integer and in_channels = out_channels = 1 or 3, got "
                          f"{unet['sample_size']!r}, {unet['in_channels']!r}, {unet.get('out_channels')!r}")
    check_halving(size, unet, "unet.sample_size" if "sample_size" in given else "--resolution")
    if size != data.size:
        notes.append(f"the images are {data.size}x{data.size} and unet.sample_size is {size}: resized to {size}x{size} "
                     f"(nearest) for training; set --resolution {size} to resize them smoothly, or drop "
                     "unet.sample_size to train at the data's size")
    if unet["in_channels"] != data.channels:
        kind = {1: "grey", 3: "RGB"}
        notes.append(f"the images are {kind[data.channels]} and unet.in_channels is {unet['in_channels']}: converted "
                     f"to {kind[unet['in_channels']]} for training"
                     + (" (the channel mean)" if unet["in_channels"] == 1 else " (the grey channel repeated)"))
    if cfg.conditional:
        check_labels_for_conditioning(data)
        wanted = data.num_classes + 1
        if "num_class_embeds" in given and unet["num_class_embeds"] != wanted:
            raise ConfigError(f"unet.num_class_embeds is {unet['num_class_embeds']}, but the data has "
                              f"{data.num_classes} classes (+1 null class = {wanted}); drop unet.num_class_embeds")
        if data.num_classes != NUM_CLASSES:
            unet["num_class_embeds"] = wanted
    return notes


def check_batch(cfg: TrainConfig, data: ImageSet) -> None:
    """Refuse a data set smaller than the batch of one step (train_batch_size x gradient_accumulation_steps)."""
    if len(data.images) < cfg.step_batch_size:
        batch = f"train_batch_size {cfg.train_batch_size}"
        if cfg.gradient_accumulation_steps > 1:
            batch += f" x gradient_accumulation_steps {cfg.gradient_accumulation_steps}"
        raise SpritesDataError(f"{data.source}: {len(data.images)} images, fewer than one batch ({batch}); add images "
                               "or lower --train_batch_size")
