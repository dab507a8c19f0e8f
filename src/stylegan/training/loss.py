"""The StyleGAN2 losses and regularisers (StyleGAN2 paper §3 and appendix B; StyleGAN3 §D for the D blur),
each a small function, and `StyleGAN2Loss`, which runs them per training phase as NVIDIA's `loss.py` does."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.common import Generator
from ..ops.upfirdn2d import filter2d

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")
Report = Callable[[str, torch.Tensor], None]


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z))) per sample (Goodfellow et al. 2014, non-saturating form)."""
    return F.softplus(-fake_logits)


def d_logistic_loss(real_logits: torch.Tensor | None, fake_logits: torch.Tensor | None) -> torch.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))) per sample; either side may be left out."""
    terms = [F.softplus(-real_logits)] if real_logits is not None else []
    terms += [F.softplus(fake_logits)] if fake_logits is not None else []
    if not terms:
        raise ValueError("d_logistic_loss needs real or fake logits")
    return sum(terms[1:], terms[0])


def r1_penalty(real_logits: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """||grad_x D(x)||^2 per sample (Mescheder et al. 2018, eq. 9 without gamma/2); differentiable."""
    (grads,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img], create_graph=True, only_inputs=True)
    return grads.square().sum(dim=[1, 2, 3])


def path_length_noise(img: torch.Tensor) -> torch.Tensor:
    """y ~ N(0, I) / sqrt(H W): the random image-space direction of the path-length regulariser."""
    return torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """||J_w^T y||_2 per sample (StyleGAN2 eq. 4), with the squared norm averaged over the ws of a sample."""
    (grads,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(lengths: torch.Tensor, pl_mean: torch.Tensor, decay: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(||J_w^T y|| - a)^2 per sample (StyleGAN2 eq. 4) with a = lerp(pl_mean, mean length, decay), the
    exponential moving average of the lengths; returns the penalty and a (detached)."""
    target = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - target).square(), target.detach()


def style_mixing_cutoff(num_ws: int, prob: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Index from which the second latent's ws take over (a 0-d tensor on `device`, never read on the host): uniform
    in [1, num_ws) with probability `prob`, else num_ws (no mixing). StyleGAN §3.1 "mixing regularization"."""
    cutoff = torch.randint(1, max(num_ws, 2), [], device=device)
    mix = torch.rand([], device=device) < prob
    return torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))


def mix_styles(mapping: Callable[..., torch.Tensor], z: torch.Tensor, c: torch.Tensor, ws: torch.Tensor, prob: float) -> torch.Tensor:
    """Style mixing regularisation (StyleGAN §3.1): with probability `prob`, the ws from a random cutoff on come
    from a second latent (mapped without updating W averages). The second latent is always mapped, as in NVIDIA's
    and the XL code, so the cutoff is never read on the host."""
    if prob <= 0:
        return ws
    cutoff = style_mixing_cutoff(ws.shape[1], prob, ws.device)
    mixed = mapping(torch.randn_like(z), c, update_emas=False)
    second = torch.arange(ws.shape[1], device=ws.device) >= cutoff
    return torch.where(second[None, :, None], mixed, ws)


def lazy_regularization(lr: float, betas: tuple[float, float], interval: int | None) -> tuple[float, tuple[float, float]]:
    """Adam settings for a main loss whose regulariser runs every `interval` minibatches (StyleGAN2 §3.1):
    lr * c and betas ** c with c = interval / (interval + 1); unchanged for interval None."""
    if interval is None:
        return lr, betas
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def ema_beta(batch_size: int, ema_kimg: float, ema_rampup: float | None, cur_nimg: int) -> float:
    """Per-step decay of G_ema: half-life `ema_kimg` thousand images, capped at `ema_rampup * cur_nimg`."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


def blur_sigma(cur_nimg: int, init_sigma: float, fade_kimg: float) -> float:
    """Std. dev. of the Gaussian blur on D's inputs, faded linearly to 0 over `fade_kimg` (StyleGAN3 §D)."""
    if fade_kimg <= 0:
        return 0.0
    return max(1 - cur_nimg / (fade_kimg * 1000), 0) * init_sigma


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `img` with taps 2^-(x/sigma)^2 over |x| <= 3 sigma (identity for sigma < 1/3)."""
    size = math.floor(sigma * 3)
    if size <= 0:
        return img
    f = torch.arange(-size, size + 1, device=img.device, dtype=torch.float32).div(sigma).square().neg().exp2()
    return filter2d(img, f / f.sum())


@dataclass
class LossConfig:
    """Settings of `StyleGAN2Loss` (NVIDIA's names)."""

    r1_gamma: float = 10.0  # R1 regularisation weight (gamma)
    style_mixing_prob: float = 0.0  # probability of style mixing regularisation
    pl_weight: float = 0.0  # path length regularisation weight, 0 = none
    pl_batch_shrink: int = 2  # the path length penalty runs on 1/N of the minibatch
    pl_decay: float = 0.01  # decay of the path length target (exponential moving average)
    blur_init_sigma: float = 0.0  # initial blur of D's inputs (StyleGAN3), 0 = none
    blur_fade_kimg: float = 0.0  # kimg over which the blur fades to 0


class StyleGAN2Loss:
    """Accumulates the gradients of one phase for one chunk of the minibatch.

    `report(name, values)` receives the per-sample statistics under NVIDIA's names (`Loss/G/loss`,
    `Loss/D/loss`, `Loss/r1_penalty`, `Loss/pl_penalty`, `Loss/scores/*`, `Loss/signs/*`, ...).

    The path-length target `pl_mean` stays fixed while the chunks of one minibatch are processed (each chunk
    uses lerp(pl_mean, its mean length, decay), as NVIDIA's code does per GPU) and moves once per minibatch
    in `update_pl_mean`, with the mean over all chunks of all processes (`mean_across` averages a tensor
    over processes). So accumulation rounds and processes are interchangeable and every process keeps the
    same target; NVIDIA's code instead updates it after every round and lets each GPU keep its own.
    """

    frozen: frozenset[str] = frozenset()  # names of G parameters no phase trains (none here)

    def __init__(self, G: Generator, D: torch.nn.Module, cfg: LossConfig, augment_pipe: torch.nn.Module | None = None,
                 report: Report | None = None, mean_across: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.G = G
        self.D = D
        self.cfg = cfg
        self.augment_pipe = augment_pipe
        self.report = report or (lambda name, value: None)
        self.mean_across = mean_across or (lambda x: x)
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        self._pl_sum = torch.zeros([], device=device)
        self._pl_count = 0

    def update_pl_mean(self) -> None:
        """Move the path-length target toward this minibatch's mean length (after a Greg/Gboth phase)."""
        if self._pl_count == 0:
            return
        batch_mean = self.mean_across(self._pl_sum / self._pl_count)
        self.pl_mean = self.pl_mean.lerp(batch_mean, self.cfg.pl_decay)
        self._pl_sum = torch.zeros_like(self._pl_sum)
        self._pl_count = 0

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        ws = mix_styles(self.G.mapping, z, c, self.G.mapping(z, c, update_emas=update_emas), self.cfg.style_mixing_prob)
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, sigma: float) -> torch.Tensor:
        img = blur_images(img, sigma)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float, cur_nimg: int) -> None:
        """Backpropagate `gain` x the mean loss of `phase` over this chunk (NVIDIA's accumulate_gradients)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        cfg = self.cfg
        if cfg.pl_weight == 0:
            phase = {"Greg": "none", "Gboth": "Gmain"}.get(phase, phase)
        if cfg.r1_gamma == 0:
            phase = {"Dreg": "none", "Dboth": "Dmain"}.get(phase, phase)
        sigma = blur_sigma(cur_nimg, cfg.blur_init_sigma, cfg.blur_fade_kimg)

        if phase in ("Gmain", "Gboth"):
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c, sigma)
            self.report("Loss/scores/fake", gen_logits)
            self.report("Loss/signs/fake", gen_logits.sign())
            loss = g_nonsaturating_loss(gen_logits)
            self.report("Loss/G/loss", loss)
            loss.mean().mul(gain).backward()

        if phase in ("Greg", "Gboth"):
            n = max(gen_z.shape[0] // cfg.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
            lengths = path_lengths(gen_img, gen_ws, path_length_noise(gen_img))
            penalty, _ = path_length_penalty(lengths, self.pl_mean, cfg.pl_decay)
            self._pl_sum = self._pl_sum + lengths.detach().mean()
            self._pl_count += 1
            self.report("Loss/pl_penalty", penalty)
            loss = penalty * cfg.pl_weight
            self.report("Loss/G/reg", loss)
            loss.mean().mul(gain).backward()

        loss_dgen: torch.Tensor | float = 0
        if phase in ("Dmain", "Dboth"):
            gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            gen_logits = self.run_D(gen_img, gen_c, sigma)
            self.report("Loss/scores/fake", gen_logits)
            self.report("Loss/signs/fake", gen_logits.sign())
            loss_dgen = d_logistic_loss(None, gen_logits)
            loss_dgen.mean().mul(gain).backward()

        if phase in ("Dmain", "Dreg", "Dboth"):
            reg = phase in ("Dreg", "Dboth")
            real = real_img.detach().requires_grad_(reg)
            real_logits = self.run_D(real, real_c, sigma)
            self.report("Loss/scores/real", real_logits)
            self.report("Loss/signs/real", real_logits.sign())
            loss_dreal: torch.Tensor | float = 0
            if phase in ("Dmain", "Dboth"):
                loss_dreal = d_logistic_loss(real_logits, None)
                self.report("Loss/D/loss", loss_dgen + loss_dreal)
            loss_r1: torch.Tensor | float = 0
            if reg:
                penalty = r1_penalty(real_logits, real)
                loss_r1 = penalty * (cfg.r1_gamma / 2)  # R1 = gamma/2 E||grad D(x)||^2, StyleGAN2 appendix B
                self.report("Loss/r1_penalty", penalty)
                self.report("Loss/D/reg", loss_r1)
            torch.as_tensor(loss_dreal + loss_r1).mean().mul(gain).backward()

