"""Talking to the Hugging Face Hub: a fast reachability check, a model card, and the push.

Every failure becomes a :class:`HubError` with one line that says what to do; the training script checks
access before any work, so an offline machine fails at the start, never after training.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.hub import HubError, hub_unreachable_reason


def check_hub_access(repo_id: str | None) -> None:
    """Fail early unless the hub is reachable and a token is available; create the repo if needed."""
    from huggingface_hub import HfApi

    reason = hub_unreachable_reason()
    if reason:
        raise HubError(f"--push_to_hub: {reason}. Drop --push_to_hub, or push the saved "
                       "pipeline folder later with `hf upload`.")
    try:
        HfApi().whoami()
    except Exception as exc:  # noqa: BLE001 - the hub client raises many kinds; the user needs one line
        raise HubError(f"--push_to_hub: not logged in to the Hugging Face Hub ({type(exc).__name__}); run "
                       "`hf auth login` or set HF_TOKEN.") from None
    if repo_id:
        try:
            HfApi().create_repo(repo_id, exist_ok=True)
        except Exception as exc:  # noqa: BLE001
            raise HubError(f"--push_to_hub: cannot create or open the repo {repo_id!r} ({exc}).") from None


def push_pipeline(folder: Path, repo_id: str, private: bool = False) -> str:
    """Upload a saved pipeline folder (with its model card) to ``repo_id``; return its URL."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True, private=private)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload spritediff pipeline")
    except Exception as exc:  # noqa: BLE001
        raise HubError(f"push to {repo_id!r} failed ({type(exc).__name__}: {str(exc)[:200]})") from None
    return f"https://huggingface.co/{repo_id}"


def usage_snippet(conditional: bool) -> list[str]:
    """The model card's usage lines: diffusers' stock pipeline (no code to trust), the folder's own code through
    ``custom_pipeline`` (spritediff need not be installed), and our classes."""
    ddim = "DiffusionPipeline.from_pretrained(PATH, custom_pipeline=\"pipeline_sprites_ddim\", trust_remote_code=True)"
    lines = [
        "from diffusers import DiffusionPipeline",
        "pipe = DiffusionPipeline.from_pretrained(PATH)  # diffusers' own DDPMPipeline: no code to trust",
        "# this folder's code (pipeline_sprites_*.py, sprites_*.py; spritediff need not be installed):",
        f"ddim = {ddim}",
    ]
    if conditional:
        lines += ["images = ddim(batch_size=5, num_inference_steps=50, class_labels=[\"hero\", \"non-hero\", \"food\", "
                  "\"spell\", \"side-facing\"],",
                  "              guidance_scale=2.0, prior=\"moments\").images  # classifier-free guidance; "
                  "labels may be mixes",
                  "# diffusers' stock DDPMPipeline / DDIMPipeline cannot pass class labels"]
    else:
        lines += ["images = ddim(batch_size=16, num_inference_steps=50, prior=\"moments\").images  # or "
                  "pipe(batch_size=16).images"]
    return [*lines, "# with spritediff installed: from pipelines import SpritesDDIMPipeline; "
            "SpritesDDIMPipeline.from_pretrained(PATH)"]


def replace_usage(card: str, conditional: bool) -> str:
    """``card`` (a model card's text) with its first ``python`` code block replaced by :func:`usage_snippet`."""
    start = card.find("```python\n")
    end = card.find("\n```", start + 1)
    if start < 0 or end < 0:
        raise ValueError("the model card has no ```python block to update")
    return card[:start] + "```python\n" + "\n".join(usage_snippet(conditional)) + card[end:]


def write_model_card(folder: Path, info: dict) -> None:
    """A README.md model card: what the model is, how it was trained, the data's credit, how to load it."""
    cfg = info.get("config", {})
    conditional = cfg.get("conditional", False)
    lines = [
        "---",
        "library_name: diffusers",
        f"tags: [diffusers, {'class-conditional' if conditional else 'unconditional'}-image-generation, ddpm, "
        "sprites, spritediff]",
        "---",
        "",
        f"# spritediff {'class-conditional ' if conditional else ''}DDPM on the 16x16 sprites",
        "",
        "A `UNet2DModel` trained with [spritediff](https://github.com/) (epsilon prediction, linear beta "
        f"{cfg.get('beta_start')} to {cfg.get('beta_end')}, T = {cfg.get('num_train_timesteps')}).",
        "",
        "```python",
        *usage_snippet(conditional),
        "```",
        "",
        "## Training",
        "",
        f"- steps: {info.get('steps')}, global batch {cfg.get('train_batch_size')}, processes: {info.get('processes')}",
        f"- training time: {info.get('train_time_s')} s; final loss ("
        f"{'min-SNR-weighted ' if cfg.get('loss_weighting') == 'min_snr' else ''}epsilon MSE): "
        f"{info.get('final_loss')}",
        f"- parameters: {info.get('parameters')}",
        *[f"- {k}: {v}" for k, v in info.get("metrics", {}).items()],
        "",
        "## Data and credit",
        "",
        "The 16x16 sprites of DeepLearning.AI's course \"How Diffusion Models Work\" (1,788 unique sprites in 5 "
        "classes: hero, non-hero, food, spell, side-facing). Sprites by **ElvGames**, **FrootsnVeggies** and "
        "**kyrise**. No licence is given by the sources: research and education only.",
        "",
        "## Config",
        "",
        "```json",
        json.dumps(cfg, indent=1),
        "```",
        "",
    ]
    (Path(folder) / "README.md").write_text("\n".join(lines))
