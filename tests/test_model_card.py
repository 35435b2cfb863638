"""The model card train.py writes: the task tag and the usage example follow the model (conditional or not)."""

from __future__ import annotations

from training.hub import write_model_card

CFG = {"beta_start": 1e-4, "beta_end": 0.02, "num_train_timesteps": 500, "train_batch_size": 128}


def test_unconditional_card(tmp_path):
    write_model_card(tmp_path, {"config": {**CFG, "conditional": False}, "steps": 10})
    card = (tmp_path / "README.md").read_text()
    assert "unconditional-image-generation" in card and "class_labels" not in card
    assert "DiffusionPipeline.from_pretrained(PATH)  # diffusers' own DDPMPipeline" in card
    assert "# spritediff DDPM" in card
    assert 'custom_pipeline="pipeline_sprites_ddim", trust_remote_code=True' in card  # the folder's own code


def test_conditional_card(tmp_path):
    write_model_card(tmp_path, {"config": {**CFG, "conditional": True}, "steps": 10})
    card = (tmp_path / "README.md").read_text()
    assert "class-conditional-image-generation" in card and "unconditional-image-generation" not in card
    assert "class_labels=[" in card and "guidance_scale=" in card and "cannot pass class labels" in card
    assert 'custom_pipeline="pipeline_sprites_ddim", trust_remote_code=True' in card
    assert "# spritediff class-conditional DDPM" in card
