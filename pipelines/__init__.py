"""Sampling pipelines for the sprites UNet: DDPM (Ho et al. 2020, Algorithm 2) and DDIM (Song et al. 2021)."""

from pipelines.common import SpritesPipelineOutput
from pipelines.pipeline_sprites_ddim import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddpm import SpritesDDPMPipeline
from pipelines.pipeline_sprites_es_ddpm import SpritesESDDPMPipeline

__all__ = ["SpritesDDPMPipeline", "SpritesDDIMPipeline", "SpritesESDDPMPipeline", "SpritesPipelineOutput"]
