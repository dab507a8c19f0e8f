"""Progressive growing (Karras et al. 2018, used by StyleGAN 2019 and the StyleGAN2 paper's configs A-D):
the level-of-detail schedule, per-resolution minibatch and learning rates, and the fade of the real images.

`lod` counts halvings below the full resolution: 0 is the full resolution, log2(res) - log2(start_res) the
start. Each level is trained for `training_kimg` and then faded into the next over `transition_kimg`
(600k images each in the papers), as NVIDIA's TF `training_schedule` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class GrowingConfig:
    """NVIDIA's `sched` arguments (lod_initial_resolution, lod_training_kimg, lod_transition_kimg, *_dict)."""

    start_res: int = 8  # the first resolution trained (lod_initial_resolution)
    training_kimg: float = 600.0  # kimg at each level (lod_training_kimg)
    transition_kimg: float = 600.0  # kimg of each fade to the next level (lod_transition_kimg)
    batch: dict[int, int] = field(default_factory=dict)  # resolution -> total minibatch (default: TrainingOptions.batch)
    batch_gpu: dict[int, int] = field(default_factory=dict)  # resolution -> per-process round
    glr: dict[int, float] = field(default_factory=dict)  # resolution -> G learning rate
    dlr: dict[int, float] = field(default_factory=dict)  # resolution -> D learning rate
    reset_optimizers: bool = True  # reset the Adam states when a level or fade starts (NVIDIA's reset_opt_for_new_lod)

    def __post_init__(self) -> None:  # JSON object keys are strings
        for name in ("batch", "batch_gpu", "glr", "dlr"):
            setattr(self, name, {int(k): v for k, v in getattr(self, name).items()})


@dataclass(frozen=True)
class Schedule:
    lod: float
    resolution: int  # the resolution being trained (2 ** (res_log2 - floor(lod)))
    batch: int
    batch_gpu: int
    glr: float
    dlr: float


def max_lod(img_resolution: int, start_res: int) -> int:
    return int(math.log2(img_resolution)) - int(math.log2(start_res))


def schedule(cur_nimg: int, img_resolution: int, cfg: GrowingConfig | None, batch: int, batch_gpu: int,
             glr: float, dlr: float) -> Schedule:
    """The training schedule at `cur_nimg` images (NVIDIA's TF `training_schedule`; without growing, lod = 0)."""
    res_log2 = int(math.log2(img_resolution))
    if cfg is None:
        return Schedule(0.0, img_resolution, batch, batch_gpu, glr, dlr)
    kimg = cur_nimg / 1000.0
    phase_dur = cfg.training_kimg + cfg.transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = float(max_lod(img_resolution, cfg.start_res) - phase_idx)
    if cfg.transition_kimg > 0:
        lod -= max(phase_kimg - cfg.training_kimg, 0.0) / cfg.transition_kimg
    lod = max(lod, 0.0)
    res = 2 ** (res_log2 - int(math.floor(lod)))
    return Schedule(lod, res, cfg.batch.get(res, batch), cfg.batch_gpu.get(res, batch_gpu),
                    cfg.glr.get(res, glr), cfg.dlr.get(res, dlr))


def level_changed(prev_lod: float, lod: float) -> bool:
    """A new level starts or a fade begins/ends (when NVIDIA's loop resets the optimizers' state)."""
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def fade_reals(x: torch.Tensor, lod: float) -> torch.Tensor:
    """Real images as the networks see them at `lod`: box-downscaled to the level, cross-faded with the next
    coarser level by frac(lod), and nearest-upscaled back to the full size (NVIDIA's process_reals)."""
    assert x.ndim == 4, f"expected [N, C, H, W], got {list(x.shape)}"
    if lod <= 0:
        return x
    n, c, h, w = x.shape
    level = int(math.floor(lod))
    assert h % 2 ** math.ceil(lod) == 0 and w % 2 ** math.ceil(lod) == 0, f"{h}x{w} images cannot be shown at lod {lod}"
    if level > 0:
        x = torch.nn.functional.avg_pool2d(x, 2**level)  # the dataset's box-filtered lower resolutions
    frac = lod - level
    if frac > 0:
        y = torch.nn.functional.avg_pool2d(x, 2)
        y = y.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        x = torch.lerp(x, y, frac)
    if level > 0:
        x = x.repeat_interleave(2**level, dim=2).repeat_interleave(2**level, dim=3)
    return x
