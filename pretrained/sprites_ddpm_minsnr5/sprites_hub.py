# Written by spritediff's save_pretrained from its pipelines/hub.py, imports made relative
# (diffusers' custom-pipeline layout); the package's module is the source: edit that, not this copy.
"""The Hub for the sprites pipelines: ``push_to_hub`` says in one clear line when the hub cannot be reached (never a
traceback from deep inside the HTTP client), and ``save_pretrained`` writes the pipelines' code beside the weights
(:mod:`pipelines.remote_code`), so that ``DiffusionPipeline.from_pretrained(repo, trust_remote_code=True)`` loads a
pushed repo where this package is not installed."""

from __future__ import annotations

from typing import Any

from .sprites_remote_code import RemoteCodeMixin


class HubError(RuntimeError):
    """The hub cannot be used; the message says why and what to do."""


def hub_unreachable_reason(timeout: float = 3.0) -> str | None:
    """None when the hub answers an HTTP request, else a short reason; no request at all in huggingface_hub's
    offline mode (``HF_HUB_OFFLINE=1``).

    The request goes through huggingface_hub's own HTTP session (the one its downloads and uploads use), so
    ``HF_ENDPOINT`` and the proxy variables (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) apply as they do there. Any
    answer counts, an error status included (401, 404, ...): the network path works, and the call that follows
    reports its own error."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.is_offline_mode():
        return "huggingface_hub's offline mode is on (HF_HUB_OFFLINE=1; unset it to use the hub)"
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - connect, DNS, proxy and timeout errors all mean the same here
        return f"cannot reach {constants.ENDPOINT} ({type(exc).__name__})"
    return None


class HubPushMixin(RemoteCodeMixin):
    """Checks that the hub answers before diffusers' ``push_to_hub`` uploads the pipeline (saved with its code)."""

    def push_to_hub(self, repo_id: str, *args: Any, **kwargs: Any) -> Any:
        """Upload the pipeline (``save_pretrained`` layout) to ``repo_id``; :class:`HubError` when offline."""
        reason = hub_unreachable_reason()
        if reason:
            raise HubError(f"push_to_hub({repo_id!r}): {reason}. Save the pipeline with "
                           "save_pretrained(DIR) and upload DIR later with `hf upload`.")
        return super().push_to_hub(repo_id, *args, **kwargs)
