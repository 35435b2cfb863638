# Written by spritediff's save_pretrained from its pipelines/hub.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The Hub for the sprites pipelines: ``push_to_hub`` says in one clear line when the hub cannot be reached (never a
traceback from deep inside the HTTP client), and ``save_pretrained`` writes the pipelines' code beside the weights
(:mod:`pipelines.remote_code`), so that ``DiffusionPipeline.from_pretrained(repo, trust_remote_code=True)`` loads a
pushed repo where this package is not installed."""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

from .sprites_remote_code import RemoteCodeMixin


class HubError(RuntimeError):
    """The hub cannot be used; the message says why and what to do."""


def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """None when the hub's host resolves and accepts a TCP connection, else a short reason."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot reach {host} ({exc.strerror or type(exc).__name__})"


class HubPushMixin(RemoteCodeMixin):
    """Checks that the hub answers before diffusers' ``push_to_hub`` uploads the pipeline (saved with its code)."""

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        """Upload the pipeline (``save_pretrained`` layout) to ``repo_id``; :class:`HubError` when offline."""
        reason = hub_unreachable_reason()
        if reason:
            raise HubError(f"push_to_hub({repo_id!r}): {reason}; this machine looks offline. Save the pipeline with "
                           "save_pretrained(DIR) and upload DIR later with `hf upload`.")
        return super().push_to_hub(repo_id, *args, **kwargs)
