"""StyleGAN-XL's losses (Sauer et al. 2022, §3 and appendix; official `training/loss.py` ProjectedGANLoss and
`train.py`), each a small function, and `ProjectedGANLoss`, which runs them per training phase with the same
interface as `StyleGAN2Loss`.

What the official code does, where the paper says less or otherwise:
- Hinge loss summed, not averaged, over images: D returns a row of logits per image and feature network; the
  loss is the sum over those rows of the row mean (so it grows with the per-GPU batch). There is no R1 (the Dreg
  phase does nothing) and the loss ignores the loop's `gain`.
- D inputs are blurred with a Gaussian of sigma 2 px (taps 2^-(x/sigma)^2), faded out linearly over the first
  300 kimg (`blur_fade_kimg`, active only when > 1).
- Path-length regularisation (weight 2, batch shrink 2, decay 0.01) only for the stem and only from 1M images
  on (`cur_nimg >= 1e6`); the penalty is not multiplied by the regularisation interval. pl_mean moves at every
  call, as in the official code.
- G's synthesis network never updates its magnitude EMAs here (`update_emas=False`, "enabling emas leads to
  collapse with PG"); the mapping updates its class-wise W averages in the D phase.
- Classifier guidance in super-resolution stages of class-conditional runs: + cls_weight x cross-entropy of a
  frozen DeiT-S (distilled, both heads averaged) on the generated images (mapped to [0, 1], ImageNet-normalised,
  bilinearly resized to 224²) against argmax c. train.py's default cls_weight is 0.
- Super-resolution stages train only what `superres_trainable` names (the official code freezes the mapping
  network and the stem's synthesis layers at every Gmain call; the Fourier-feature input layer
  `synthesis.input` stays trainable).
- Optimiser: Adam betas (0, 0.99), eps 1e-8, G lr 0.0025, D lr 0.002, both scaled for lazy regularisation with
  G_reg_interval 4 and D_reg_interval 16 (the training loop's defaults) although D has no regulariser.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..models.common import Generator
from ..models.projected_discriminator import official_logit_rows
from .loss import PHASES, Report, blur_images, lazy_regularization, mix_styles, path_length_noise, path_length_penalty, path_lengths

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GUIDANCE_RES = 224
GUIDANCE_CLASSIFIER = "deit_small_distilled_patch16_224"

# Optimiser constants of official XL training (train.py + training_loop.py defaults).
G_LR, D_LR = 0.0025, 0.002
BETAS = (0.0, 0.99)
ADAM_EPS = 1e-8
G_REG_INTERVAL, D_REG_INTERVAL = 4, 16


def xl_adam_settings(net: str) -> tuple[float, tuple[float, float], float]:
    """(lr, betas, eps) of the official XL Adam for "G" or "D", after the lazy-regularisation scaling."""
    lr, interval = {"G": (G_LR, G_REG_INTERVAL), "D": (D_LR, D_REG_INTERVAL)}[net]
    lr, betas = lazy_regularization(lr, BETAS, interval)
    return lr, betas, ADAM_EPS


def xl_ema_kimg(batch_size: int) -> float:
    """G_ema half-life of official XL training: batch * 10 / 32 kimg (ramp-up 0.05 when not resuming)."""
    return batch_size * 10 / 32


def g_hinge_loss(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over logit rows of mean(-D): the generator's hinge loss, summed as the official code sums it."""
    return sum([(-row).mean() for row in rows])  # type: ignore[return-value]


def d_hinge_loss_fake(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over rows of mean(relu(1 + D(G(z))))."""
    return sum([F.relu(torch.ones_like(row) + row).mean() for row in rows])  # type: ignore[return-value]


def d_hinge_loss_real(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """sum over rows of mean(relu(1 - D(x)))."""
    return sum([F.relu(torch.ones_like(row) - row).mean() for row in rows])  # type: ignore[return-value]


def xl_blur_sigma(cur_nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """sigma of the D-input blur: init_sigma faded linearly to 0 over fade_kimg (none unless fade_kimg > 1)."""
    if fade_kimg <= 1:
        return 0.0
    return max(1 - cur_nimg / (fade_kimg * 1e3), 0) * init_sigma


def superres_trainable(param_names: Iterable[str], layer_names: Sequence[str], head_layer_names: Sequence[str]) -> list[str]:
    """The G parameters a super-resolution stage trains (official `train_head_only`): all but the mapping network
    and the synthesis layers in `layer_names` that are not head layers — i.e. the head layers and whatever else
    the synthesis network holds (its input layer `synthesis.input.*`)."""
    heads = set(head_layer_names)
    frozen_prefixes = ("mapping.",) + tuple(f"synthesis.{n}." for n in layer_names if n not in heads)
    return [n for n in param_names if not n.startswith(frozen_prefixes)]


def superres_frozen(G: Any) -> set[str]:
    """Names of the parameters of G a super-resolution stage does not train (G has the official
    `synthesis.layer_names` and `head_layer_names`)."""
    names = [n for n, _ in G.named_parameters()]
    return set(names) - set(superres_trainable(names, G.synthesis.layer_names, G.head_layer_names))


def guidance_input(img: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> the guidance classifier's input: [0, 1], ImageNet mean/std, bilinear to 224²."""
    x = img.add(1).div(2)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return F.interpolate(x.sub(mean).div(std), size=GUIDANCE_RES, mode="bilinear", align_corners=False)


def guidance_loss(classifier: torch.nn.Module, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the frozen classifier's logits on generated images against the labels' argmax."""
    return F.cross_entropy(classifier(guidance_input(img)), c.argmax(1))


@dataclass
class XLLossConfig:
    """Settings of `ProjectedGANLoss` (official names; defaults = the stem of train.py)."""

    blur_init_sigma: float = 2.0
    blur_fade_kimg: float = 300.0
    pl_weight: float = 2.0  # 0 for super-resolution stages
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    pl_start_kimg: float = 1000.0  # path-length regularisation from 1M images on
    style_mixing_prob: float = 0.0
    cls_weight: float = 0.0  # classifier guidance (super-resolution stages of conditional runs)
    train_head_only: bool = False  # super-resolution stages

    @classmethod
    def superres(cls, cond: bool, cls_weight: float = 0.0) -> XLLossConfig:
        """train.py's --superres settings: no path length, guidance only when conditional, head layers only."""
        return cls(pl_weight=0.0, cls_weight=cls_weight if cond else 0.0, train_head_only=True)


class ProjectedGANLoss:
    """Accumulates the gradients of one phase for one chunk, as the official ProjectedGANLoss does.

    `D(img, c, per_backbone=True)` must return [N, L_b] logits per feature network (models.projected_discriminator).
    `classifier` (a frozen DeiT-S in eval mode, see io.feature_weights.load_guidance_classifier) is needed when
    cls_weight > 0. For super-resolution stages G must have the official `synthesis.layer_names` and
    `head_layer_names`. `report(name, values)` receives NVIDIA's statistics names.
    """

    def __init__(self, G: Generator, D: torch.nn.Module, cfg: XLLossConfig, classifier: torch.nn.Module | None = None,
                 report: Report | None = None) -> None:
        if cfg.cls_weight and classifier is None:
            raise ValueError("classifier guidance (cls_weight > 0) needs the DeiT-S classifier")
        self.G, self.D, self.cfg, self.classifier = G, D, cfg, classifier
        self.report = report or (lambda name, value: None)
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)
        self.frozen: set[str] = set()
        if cfg.train_head_only:
            self.frozen = superres_frozen(G)

    def update_pl_mean(self) -> None:
        """Nothing to do: pl_mean already moved in each Greg call (official behaviour)."""

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ws = mix_styles(self.G.mapping, z, c, self.G.mapping(z, c, update_emas=update_emas), self.cfg.style_mixing_prob)
        return self.G.synthesis(ws, update_emas=False), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, sigma: float) -> list[torch.Tensor]:
        return official_logit_rows(self.D(blur_images(img, sigma), c, per_backbone=True))

    def _freeze_stem(self) -> None:
        for name, p in self.G.named_parameters():
            if name in self.frozen:
                p.requires_grad_(False)

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float, cur_nimg: int) -> None:
        """Backpropagate the loss of `phase` for this chunk (`gain` is ignored, as in the official code)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if phase == "Dreg":
            return
        cfg = self.cfg
        sigma = xl_blur_sigma(cur_nimg, cfg.blur_init_sigma, cfg.blur_fade_kimg)

        if phase in ("Gmain", "Gboth"):
            self._freeze_stem()
            gen_img, _ = self.run_G(gen_z, gen_c)
            rows = self.run_D(gen_img, gen_c, sigma)
            loss = g_hinge_loss(rows)
            if cfg.cls_weight:
                assert self.classifier is not None
                g_cls = guidance_loss(self.classifier, gen_img, gen_c)
                loss = loss + cfg.cls_weight * g_cls
                self.report("Loss/G/guidance_loss", g_cls)
            logits = torch.cat(rows)
            self.report("Loss/scores/fake", logits)
            self.report("Loss/signs/fake", logits.sign())
            self.report("Loss/G/loss", loss)
            loss.backward()

        if phase in ("Greg", "Gboth") and cfg.pl_weight and cur_nimg >= cfg.pl_start_kimg * 1000:
            n = max(gen_z.shape[0] // cfg.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            lengths = path_lengths(gen_img, gen_ws, path_length_noise(gen_img))
            penalty, self.pl_mean = path_length_penalty(lengths, self.pl_mean, cfg.pl_decay)
            self.report("Loss/pl_penalty", penalty)
            loss_pl = penalty * cfg.pl_weight
            self.report("Loss/G/reg", loss_pl)
            loss_pl.mean().backward()

        if phase in ("Dmain", "Dboth"):
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            rows = self.run_D(gen_img, gen_c, sigma)
            loss_gen = d_hinge_loss_fake(rows)
            logits = torch.cat(rows)
            self.report("Loss/scores/fake", logits)
            self.report("Loss/signs/fake", logits.sign())
            loss_gen.backward()

            rows = self.run_D(real_img.detach().requires_grad_(False), real_c, sigma)
            loss_real = d_hinge_loss_real(rows)
            logits = torch.cat(rows)
            self.report("Loss/scores/real", logits)
            self.report("Loss/signs/real", logits.sign())
            self.report("Loss/D/loss", loss_gen.detach() + loss_real.detach())
            loss_real.backward()

