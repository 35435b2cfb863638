"""What ``save_pretrained`` of the sprites pipelines writes beside diffusers' files (a folder's code does not carry
this module: :meth:`pipelines.common.SavedFolderMixin.save_pretrained` finds it in the package only).

    folder/model_index.json              names diffusers' DDPMPipeline (stock diffusers loads the folder)
    folder/unet/, folder/scheduler/      diffusers' own
    folder/data_moments.safetensors      the data's mean and covariance for prior="moments", when the pipeline has them
    folder/class_names.json              a conditional pipeline's class names, when set (:mod:`pipelines.labels`)
    folder/pipeline_sprites_*.py, ...    the course pipelines' code (:mod:`pipelines.remote_code`)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.atomic import write_text_atomic
from pipelines.labels import CLASS_NAMES_FILE, check_class_names
from pipelines.prior import MOMENTS_FILE, DataMoments
from pipelines.remote_code import write_pipeline_code

HUB_KEYS = ("repo_id", "commit_message", "private", "create_pr", "token")


def save_folder(pipe, save, save_directory: str | Path, *args: Any, push_to_hub: bool = False, **kwargs: Any) -> Any:
    """diffusers' ``save(save_directory, ...)``, then the data moments, the class names (when set or read from a
    file; a 6-row UNet's default sprite names need none) and the code; ``push_to_hub=True`` uploads the complete
    folder afterwards."""
    hub = {k: kwargs.pop(k) for k in HUB_KEYS if k in kwargs}
    result = save(save_directory, *args, **kwargs)
    moments = getattr(pipe, "_data_moments", None)
    source = getattr(pipe.config, "_name_or_path", None)
    if moments is None and source and (Path(source) / MOMENTS_FILE).is_file():
        moments = DataMoments.load(Path(source) / MOMENTS_FILE)
    if moments is not None:
        moments.save(save_directory)
    if getattr(pipe, "class_names", None) is not None and pipe._class_names is not None:  # set, or read from a file
        save_class_names(save_directory, pipe._class_names)
    write_pipeline_code(save_directory)
    if push_to_hub:
        pipe.push_to_hub(hub.pop("repo_id", Path(save_directory).name), **hub)
    return result


def save_class_names(folder: str | Path, names: Sequence[str]) -> Path:
    """Write ``folder/class_names.json``: the class names in class order, a JSON list."""
    return write_text_atomic(Path(folder) / CLASS_NAMES_FILE, json.dumps(list(check_class_names(names))) + "\n")
