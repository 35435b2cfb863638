"""Sampling pipelines for the sprites UNet: DDPM (Ho et al. 2020, Algorithm 2), DDIM (Song et al. 2021), ES-DDPM
and the fast solvers of :mod:`pipelines.samplers`; and editing: DDIM inversion and slerp (:mod:`pipelines.inversion`),
RePaint inpainting and SDEdit image-to-image."""

from pipelines.common import SpritesPipelineOutput
from pipelines.inversion import slerp
from pipelines.pipeline_sprites_ddim import SpritesDDIMPipeline
from pipelines.pipeline_sprites_ddpm import SpritesDDPMPipeline
from pipelines.pipeline_sprites_es_ddpm import SpritesESDDPMPipeline
from pipelines.pipeline_sprites_img2img import SpritesImg2ImgPipeline
from pipelines.pipeline_sprites_inpaint import SpritesInpaintPipeline
from pipelines.pipeline_sprites_solver import SpritesSolverPipeline

__all__ = ["SpritesDDPMPipeline", "SpritesDDIMPipeline", "SpritesESDDPMPipeline", "SpritesSolverPipeline",
           "SpritesImg2ImgPipeline", "SpritesInpaintPipeline", "SpritesPipelineOutput", "slerp"]
