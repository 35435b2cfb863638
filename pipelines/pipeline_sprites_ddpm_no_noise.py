"""Algorithm 2 of Ho et al. (2020) without its sigma_t z: every step keeps only its mean, from the same x_T as
:class:`pipelines.SpritesDDPMPipeline` (the course's figure of why the sampler needs its noise)."""

from __future__ import annotations

from typing import Any

from pipelines.pipeline_sprites_ddpm import DDPMStep, SpritesDDPMPipeline


class SpritesDDPMWithoutNoisePipeline(SpritesDDPMPipeline):
    """Algorithm 2 with the sigma_t z of every step removed (sigma_t = 0): the chain follows the mean of each
    step from the same x_T, which shows why the sampler needs its noise."""

    own_method_only = "Algorithm 2 without its noise"

    def sampling_steps(self, *args: Any) -> list[DDPMStep]:
        return [step._replace(sigma=0.0) for step in super().sampling_steps(*args)]
