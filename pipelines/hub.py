"""``push_to_hub`` for the sprites pipelines: one clear line when the hub cannot be reached, never a traceback
from deep inside the HTTP client."""

from __future__ import annotations

from typing import Any

from training.hub import HubError, hub_unreachable_reason


class HubPushMixin:
    """Checks that the hub answers before diffusers' ``push_to_hub`` uploads the pipeline."""

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        """Upload the pipeline (``save_pretrained`` layout) to ``repo_id``; :class:`HubError` when offline."""
        reason = hub_unreachable_reason()
        if reason:
            raise HubError(f"push_to_hub({repo_id!r}): {reason}; this machine looks offline. Save the pipeline with "
                           "save_pretrained(DIR) and upload DIR later with `hf upload`.")
        return super().push_to_hub(repo_id, *args, **kwargs)
