"""The pipelines' shape, as diffusers users read them: every ``__call__`` calls ``self.unet`` itself in its own
loop, with guidance one line beside it, and the course pipelines take what a diffusers user expects plus the
project's named ideas (the research knobs live in SpritesSolverPipeline alone)."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

import pipelines
from pipelines.scheduler_loop import SchedulerLoopMixin

PIPELINES = [getattr(pipelines, n) for n in pipelines.__all__ if n.startswith("Sprites") and n.endswith("Pipeline")]
# diffusers' DDPMPipeline / DDIMPipeline arguments, the project's named ideas, and the scheduler-config overrides
COURSE = {"batch_size", "generator", "num_inference_steps", "output_type", "return_dict", "latents", "prior",
          "class_labels", "guidance_scale", "return_intermediates", "intermediate_every", "clip_sample",
          "timestep_spacing"}
RESEARCH = {"prior_rank", "learned_schedule", "fitted", "sigma_schedule", "karras_range", "churn",
            "s_tmin", "s_tmax", "s_noise", "nfe", "sampler"}


def unet_calls(fn) -> list[str]:
    """The ``self.unet(...)`` calls written in ``fn``'s own source (its loop, or a function it defines)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "self.unet":
            found.append(ast.unparse(node))
    return found


def test_the_pipelines_are_all_found():
    names = {p.__name__ for p in PIPELINES}
    assert {"SpritesDDPMPipeline", "SpritesDDIMPipeline", "SpritesSolverPipeline", "SpritesInpaintPipeline",
            "SpritesImg2ImgPipeline", "SpritesESDDPMPipeline"} <= names


@pytest.mark.parametrize("fn", [*(p.__call__ for p in PIPELINES), SchedulerLoopMixin.scheduler_loop],
                         ids=lambda f: f.__qualname__)
def test_every_call_runs_the_unet_itself_with_guidance_beside_it(fn):
    assert unet_calls(fn), f"{fn.__qualname__} does not call self.unet itself"
    source = inspect.getsource(fn)
    assert "guidance(eps, cond.scale) if cond.guided else eps" in source, fn.__qualname__


@pytest.mark.parametrize("cls, own", [(pipelines.SpritesDDPMPipeline, "variance"),
                                      (pipelines.SpritesDDIMPipeline, "eta")], ids=lambda c: getattr(c, "__name__", c))
def test_the_course_pipelines_take_no_research_knobs(cls, own):
    params = set(inspect.signature(cls.__call__).parameters) - {"self"}
    assert params == COURSE | {own}
    assert not params & RESEARCH
    solver = set(inspect.signature(pipelines.SpritesSolverPipeline.__call__).parameters)
    assert solver >= RESEARCH  # they live in the solver pipeline
