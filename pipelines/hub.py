"""The Hub for the sprites pipelines: ``push_to_hub`` says in one clear line when the hub cannot be reached (never a
traceback from deep inside the HTTP client); :class:`pipelines.common.SavedFolderMixin` calls :func:`check_hub`
first."""

from __future__ import annotations


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


def check_hub(what: str) -> None:
    """:class:`HubError` naming ``what`` (``push_to_hub('me/sprites')``) when the hub does not answer."""
    reason = hub_unreachable_reason()
    if reason:
        raise HubError(f"{what}: {reason}. Save the pipeline with save_pretrained(DIR) and upload DIR later with "
                       "`hf upload`.")
