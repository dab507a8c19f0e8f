"""rosinality/stylegan2-pytorch checkpoints <-> our (official-named) configs and state dicts.

A rosinality checkpoint is a torch file holding a dict: `g`, `g_ema` (Generator state dicts), `d`
(Discriminator state dict), `latent_avg` (mean W, written by its TF converter) and training state
(`g_optim`, `d_optim`, `args`, `ada_aug_p`). Its networks compute exactly what ours compute with

    G: architecture 'skip', mapping lr_multiplier 0.01 (`lr_mlp`), no labels, z_dim == w_dim (`style_dim`),
       noise inputs, lrelu, 3x3 convolutions, FIR filter [1, 3, 3, 1] (`blur_kernel`), fp32, no clamping;
    D: architecture 'resnet', minibatch-stddev group 4 with 1 feature, otherwise as G.

Weights are stored raw (equalized learning rate: the 1/sqrt(fan_in) and lr gains are applied at run
time) in both code bases, so values carry over unchanged. Only layouts and names differ (table below):

  * modulated conv weights carry a leading batch axis: [1, O, I, k, k] vs our [O, I, k, k];
    the constant input likewise: [1, C, 4, 4] vs [C, 4, 4];
  * noise strengths are [1] vs []; stored noises are buffers `noises.noise_{i}` [1, 1, r, r] vs our
    per-layer `noise_const` [r, r], numbered 0 (4x4) then two per resolution (i = 2*log2(r) - 5 + conv);
  * ToRGB biases are [1, C, 1, 1] vs [C]; conv biases live in the activation (`activate.bias`,
    FusedLeakyReLU) and, in D, at the last index of the ConvLayer sequential (`conv2.2.bias`);
  * D ConvLayers are sequentials whose blur module has no weights but a `kernel` buffer: with
    downsampling [Blur, EqualConv2d, FusedLeakyReLU], otherwise [EqualConv2d, FusedLeakyReLU];
  * the up-sampling conv of both code bases is `conv_transpose2d` with the raw weight (transposed to
    [I, O, k, k] for the call, not flipped), followed by the same FIR filter with the same padding, and
    the down-sampling conv filters first, then runs a stride-2 correlation in both; so no weight is
    flipped or transposed in storage. (Both flip TF's `Conv0_up` weights on import, consistently.)
  * blur / upsample `kernel` buffers (outer(f, f) / sum, times 4 where they upsample) have no
    counterpart in our state dicts, where `resample_filter` buffers are derived from the config.

Tensor names are kept in the explicit tables `G_TABLE` and `D_TABLE` below.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import torch

from ..models.stylegan2 import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    MappingConfig,
    SynthesisConfig,
    channels_at,
)
from .tensor_map import SAME, Row, Transform, to_ours, to_theirs

CONFIG_KEY = "stylegan_config"
CONFIG_FORMAT = 1
NETWORK_KEYS = {"G": "g", "G_ema": "g_ema", "D": "d"}  # ours -> rosinality
IGNORED_KEYS = frozenset({"g_optim", "d_optim", "args", "ada_aug_p", "iter"})  # training state; not converted
LR_MLP = 0.01
MBSTD_GROUP = 4
DEFAULT_FILTER = [1, 3, 3, 1]


# ----------------------------------------------------------------------------- layouts


SOURCE = "rosinality tensor"
BATCHED = Transform("leading batch axis", lambda t: t.squeeze(0), lambda t: t.unsqueeze(0))  # [1, *s] <-> s
SCALAR = Transform("scalar", lambda t: t.reshape([]), lambda t: t.reshape([1]))  # [1] <-> []
NOISE = Transform("noise image", lambda t: t[0, 0], lambda t: t[None, None])  # [1, 1, r, r] <-> [r, r]
RGB_BIAS = Transform("rgb bias", lambda t: t.reshape([-1]), lambda t: t.reshape([1, -1, 1, 1]))  # [1, C, 1, 1] <-> [C]
UP_KERNEL = Transform("upsampling kernel", lambda t: t / 4, lambda t: t * 4, is_kernel=True)  # rosinality scales by factor**2
KERNEL = Transform("kernel", lambda t: t, lambda t: t, is_kernel=True)

# Rows: (our name regex, rosinality name template or None = ours only, layout). First full match wins.
# Template fields: the regex groups plus those of `_fields` (`style`, `conv`, `noise`, `rgb`, `block`).

G_TABLE: list[Row] = [
    (r"mapping\.fc(?P<i>\d+)\.(?P<p>weight|bias)",                    "style.{style}.{p}",                  SAME),
    (r"mapping\.w_avg",                                               None,                                 SAME),  # top-level `latent_avg`
    (r"synthesis\.b4\.const",                                         "input.input",                        BATCHED),
    (r"synthesis\.b4\.conv1\.weight",                                 "conv1.conv.weight",                  BATCHED),
    (r"synthesis\.b4\.conv1\.affine\.(?P<p>weight|bias)",             "conv1.conv.modulation.{p}",          SAME),
    (r"synthesis\.b4\.conv1\.noise_strength",                         "conv1.noise.weight",                 SCALAR),
    (r"synthesis\.b4\.conv1\.noise_const",                            "noises.noise_0",                     NOISE),
    (r"synthesis\.b4\.conv1\.bias",                                   "conv1.activate.bias",                SAME),
    (r"synthesis\.b4\.torgb\.weight",                                 "to_rgb1.conv.weight",                BATCHED),
    (r"synthesis\.b4\.torgb\.affine\.(?P<p>weight|bias)",             "to_rgb1.conv.modulation.{p}",        SAME),
    (r"synthesis\.b4\.torgb\.bias",                                   "to_rgb1.bias",                       RGB_BIAS),
    (r"synthesis\.b4\.(conv1\.)?resample_filter",                     None,                                 SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>[01])\.weight",              "convs.{conv}.conv.weight",           BATCHED),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>[01])\.affine\.(?P<p>weight|bias)", "convs.{conv}.conv.modulation.{p}", SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>[01])\.noise_strength",      "convs.{conv}.noise.weight",          SCALAR),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>[01])\.noise_const",         "noises.noise_{noise}",               NOISE),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>[01])\.bias",                "convs.{conv}.activate.bias",         SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<c>0)\.resample_filter",        "convs.{conv}.conv.blur.kernel",      UP_KERNEL),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.resample_filter",               None,                                 SAME),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.weight",                        "to_rgbs.{rgb}.conv.weight",          BATCHED),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.affine\.(?P<p>weight|bias)",    "to_rgbs.{rgb}.conv.modulation.{p}",  SAME),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.bias",                          "to_rgbs.{rgb}.bias",                 RGB_BIAS),
    (r"synthesis\.b(?P<r>\d+)\.resample_filter",                      "to_rgbs.{rgb}.upsample.kernel",      UP_KERNEL),
]

D_TABLE: list[Row] = [
    (r"b(?P<r>\d+)\.fromrgb\.weight",                                 "convs.0.0.weight",                   SAME),
    (r"b(?P<r>\d+)\.fromrgb\.bias",                                   "convs.0.1.bias",                     SAME),
    (r"b(?P<r>\d+)\.conv0\.weight",                                   "convs.{block}.conv1.0.weight",       SAME),
    (r"b(?P<r>\d+)\.conv0\.bias",                                     "convs.{block}.conv1.1.bias",         SAME),
    (r"b(?P<r>\d+)\.conv1\.weight",                                   "convs.{block}.conv2.1.weight",       SAME),
    (r"b(?P<r>\d+)\.conv1\.bias",                                     "convs.{block}.conv2.2.bias",         SAME),
    (r"b(?P<r>\d+)\.conv1\.resample_filter",                          "convs.{block}.conv2.0.kernel",       KERNEL),
    (r"b(?P<r>\d+)\.skip\.weight",                                    "convs.{block}.skip.1.weight",        SAME),
    (r"b(?P<r>\d+)\.skip\.resample_filter",                           "convs.{block}.skip.0.kernel",        KERNEL),
    (r"b4\.conv\.weight",                                             "final_conv.0.weight",                SAME),
    (r"b4\.conv\.bias",                                               "final_conv.1.bias",                  SAME),
    (r"b4\.fc\.(?P<p>weight|bias)",                                   "final_linear.0.{p}",                 SAME),
    (r"b4\.out\.(?P<p>weight|bias)",                                  "final_linear.1.{p}",                 SAME),
    (r"b(?P<r>\d+)\.((fromrgb|conv0|conv)\.)?resample_filter",        None,                                 SAME),
]


def _fields(groups: dict[str, str], size: int) -> dict[str, Any]:
    """Template fields derived from a match: rosinality's indices for resolution r."""
    f: dict[str, Any] = dict(groups)
    if groups.get("i") is not None:
        f["style"] = int(groups["i"]) + 1  # style.0 is PixelNorm
    if groups.get("r") is not None:
        lg = int(math.log2(int(groups["r"])))
        c = int(groups.get("c") or 0)
        f["conv"] = 2 * (lg - 3) + c  # convs.{2k}: upsampling conv of 2**(k+3), convs.{2k+1}: its second conv
        f["noise"] = 2 * lg - 5 + c  # noises.noise_0 is the 4x4 conv
        f["rgb"] = lg - 3  # to_rgbs.{k} at 2**(k+3); to_rgb1 is 4x4
        f["block"] = int(math.log2(size)) - lg + 1  # D: convs.0 is fromRGB, convs.{j} the ResBlock at size / 2**(j-1)
    return f


# ----------------------------------------------------------------------------- helpers


def _plain(x: Any, where: str) -> Any:
    """Plain JSON data (dict / list / str / int / float / bool / None) from a config dict."""
    if isinstance(x, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v, where) for v in x]
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:  # numpy / torch scalars
        return x.item()
    raise ValueError(f"{where}: {type(x).__name__} value is not plain JSON data")


def _tensor(sd: dict[str, Any], key: str, ndim: int, what: str) -> torch.Tensor:
    t = sd.get(key)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what}: missing tensor {key!r}; not a rosinality/stylegan2-pytorch state dict?")
    if t.ndim != ndim:
        raise ValueError(f"{what}: {key} has shape {list(t.shape)}, expected {ndim} dimensions")
    return t


def _indices(sd: dict[str, Any], pattern: str) -> list[int]:
    return sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(pattern, k)))


def _taps_from_kernel(kernel: torch.Tensor | None, factor: float, name: str, what: str) -> list[float]:
    """Recover 1-D FIR taps from rosinality's outer(f, f) / sum(f)**2 * factor kernel."""
    if not isinstance(kernel, torch.Tensor):
        return list(DEFAULT_FILTER)  # absent (4x4 networks): the table pass reports real omissions
    k = kernel.detach().to(torch.float64) / factor
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"{what}: {name} has shape {list(kernel.shape)}, expected a square 2-D blur kernel")
    taps = k.sum(dim=1)  # row sums of outer(f, f) / sum(f)**2 = f / sum(f)
    if not torch.allclose(torch.outer(taps, taps), k, atol=1e-6) or taps.numel() >= 8:
        raise ValueError(f"{what}: {name} is not a separable blur kernel of 2-7 taps; unsupported")
    nonzero = taps.abs()[taps.abs() > 1e-12]
    taps = taps / nonzero.min()
    if torch.allclose(taps, taps.round(), atol=1e-5):
        return [int(v) for v in taps.round().tolist()]
    return [float(v) for v in taps.tolist()]


def channel_layout(channels: dict[int, int], what: str) -> tuple[int, int]:
    """(channel_base, channel_max) with min(channel_base // res, channel_max) == channels[res] at every
    resolution: channel_max is the largest count, channel_base the smallest value that fits."""
    cmax = max(channels.values())
    layout = ", ".join(f"{r}: {channels[r]}" for r in sorted(channels))
    problem = f"{what}: channels per resolution ({layout}) cannot be written as min(channel_base // res, channel_max)"
    resolutions = sorted(channels)
    for lower, res in zip(resolutions, resolutions[1:]):
        if channels[res] > channels[lower]:
            raise ValueError(f"{problem}: they grow from {channels[lower]} at resolution {lower} to {channels[res]} at resolution {res}")
    lo, hi = 0, math.inf
    for res in resolutions:
        c = channels[res]
        if c == cmax:
            lo = max(lo, cmax * res)
        else:
            lo, hi = max(lo, c * res), min(hi, c * res + res - 1)
        if lo > hi:
            raise ValueError(f"{problem}: no channel_base fits at resolution {res}")
    for res in sorted(channels):  # belt and braces
        assert channels_at(res, lo, cmax) == channels[res], (res, lo, cmax)
    return int(lo), int(cmax)


# ----------------------------------------------------------------------------- config inference


def _infer_generator(sd: dict[str, Any], what: str) -> GeneratorConfig:
    style = _indices(sd, r"style\.(\d+)\.weight")
    if style != list(range(1, len(style) + 1)):
        raise ValueError(f"{what}: mapping layers style.{{i}} are not numbered 1..n (found {style})")
    style_dim = _tensor(sd, "conv1.conv.modulation.weight", 2, what).shape[1]
    rgbs = _indices(sd, r"to_rgbs\.(\d+)\.conv\.weight")
    if rgbs != list(range(len(rgbs))):
        raise ValueError(f"{what}: to_rgbs.{{k}} are not numbered 0..n-1 (found {rgbs})")
    size = 4 * 2 ** len(rgbs)
    channels = {4: _tensor(sd, "input.input", 4, what).shape[1]}
    for k in range(len(rgbs)):
        channels[2 ** (k + 3)] = _tensor(sd, f"convs.{2 * k}.conv.weight", 5, what).shape[1]
    to_rgb = _tensor(sd, "to_rgb1.conv.weight", 5, what)
    kernel_size = _tensor(sd, "conv1.conv.weight", 5, what).shape[-1]
    taps = _taps_from_kernel(sd.get("convs.0.conv.blur.kernel"), 4, "convs.0.conv.blur.kernel", what)
    base, cmax = channel_layout(channels, f"{what} (generator)")
    return GeneratorConfig(
        z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=size, img_channels=to_rgb.shape[1],
        mapping=MappingConfig(num_layers=len(style), lr_multiplier=LR_MLP),
        synthesis=SynthesisConfig(
            channel_base=base, channel_max=cmax, num_fp16_res=0, conv_clamp=None, architecture="skip",
            resample_filter=taps, use_noise=True, activation="lrelu", kernel_size=kernel_size,
        ),
    )


def _infer_discriminator(sd: dict[str, Any], what: str) -> DiscriminatorConfig:
    blocks = _indices(sd, r"convs\.(\d+)\.conv1\.0\.weight")
    if blocks != list(range(1, len(blocks) + 1)):
        raise ValueError(f"{what}: residual blocks convs.{{j}} are not numbered 1..n (found {blocks})")
    size = 4 * 2 ** len(blocks)
    from_rgb = _tensor(sd, "convs.0.0.weight", 4, what)
    channels = {size: from_rgb.shape[0]}
    for j in blocks:
        channels[(size >> (j - 1)) // 2] = _tensor(sd, f"convs.{j}.conv2.1.weight", 4, what).shape[0]
    final = _tensor(sd, "final_conv.0.weight", 4, what)
    channels[4] = final.shape[0]
    if final.shape[1] != channels[4] + 1:
        raise ValueError(f"{what}: final_conv.0.weight has {final.shape[1]} input channels, expected {channels[4]} + 1 (minibatch stddev)")
    taps = _taps_from_kernel(sd.get("convs.1.conv2.0.kernel"), 1, "convs.1.conv2.0.kernel", what)
    base, cmax = channel_layout(channels, f"{what} (discriminator)")
    return DiscriminatorConfig(
        c_dim=0, img_resolution=size, img_channels=from_rgb.shape[1], architecture="resnet", channel_base=base,
        channel_max=cmax, num_fp16_res=0, conv_clamp=None, activation="lrelu", resample_filter=taps,
        mbstd_group_size=MBSTD_GROUP, mbstd_num_channels=1,
    )


def _configs_from_payload(payload: Any) -> tuple[GeneratorConfig, DiscriminatorConfig | None]:
    if not isinstance(payload, dict) or payload.get("format") != CONFIG_FORMAT or not isinstance(payload.get("G"), dict):
        raise ValueError(f"{CONFIG_KEY}: expected {{'format': {CONFIG_FORMAT}, 'G': {{...}}, 'D': {{...}} | None}}")
    unknown = sorted(set(payload) - {"format", "G", "D"})
    if unknown:
        raise ValueError(f"{CONFIG_KEY}: unknown key(s) {', '.join(map(str, unknown))}")
    g_cfg = GeneratorConfig.from_dict(payload["G"])
    d_cfg = DiscriminatorConfig.from_dict(payload["D"]) if payload.get("D") is not None else None
    return g_cfg, d_cfg


# ----------------------------------------------------------------------------- state dicts


def _to_ours(theirs: dict[str, Any], template: dict[str, torch.Tensor], table: list[Row], size: int, what: str) -> dict[str, torch.Tensor]:
    """Rosinality state dict -> ours, shaped like `template` (our freshly built network's state dict)."""
    return to_ours(template, theirs, table, functools.partial(_fields, size=size), source=SOURCE, where=what)


def _to_theirs(ours: dict[str, torch.Tensor], template: dict[str, torch.Tensor], table: list[Row], size: int, what: str) -> dict[str, torch.Tensor]:
    return to_theirs(ours, template, table, functools.partial(_fields, size=size), source=SOURCE, where=what)


# ----------------------------------------------------------------------------- public API


def from_rosinality(ckpt: dict[str, Any]) -> tuple[GeneratorConfig, DiscriminatorConfig | None, dict[str, dict[str, torch.Tensor]]]:
    """rosinality checkpoint dict -> (G config, D config or None, {'G' | 'G_ema' | 'D': our state dict}).

    Configs come from `stylegan_config` when present (files written by `to_rosinality`), else are
    inferred from tensor shapes. `mapping.w_avg` of both generators is `latent_avg` (zeros if absent).
    Missing, unexpected or misshapen tensors raise ValueError naming them.
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f"rosinality checkpoint: expected a dict, got {type(ckpt).__name__}")
    unknown = sorted(str(k) for k in set(ckpt) - set(NETWORK_KEYS.values()) - IGNORED_KEYS - {"latent_avg", CONFIG_KEY})
    if unknown:
        raise ValueError(
            f"rosinality checkpoint: unknown top-level key(s) {', '.join(unknown)} "
            f"(expected g, g_ema, d, latent_avg and training state {', '.join(sorted(IGNORED_KEYS))})"
        )
    g_key = "g_ema" if "g_ema" in ckpt else "g" if "g" in ckpt else None
    if g_key is None:
        raise ValueError("rosinality checkpoint holds no generator (neither 'g_ema' nor 'g')")
    for key in NETWORK_KEYS.values():
        if key in ckpt and not isinstance(ckpt[key], dict):
            raise ValueError(f"rosinality checkpoint: '{key}' is a {type(ckpt[key]).__name__}, expected a state dict")

    if CONFIG_KEY in ckpt:
        g_cfg, d_cfg = _configs_from_payload(ckpt[CONFIG_KEY])
        try:
            _check_generator(g_cfg)
            if d_cfg is not None:
                _check_discriminator(d_cfg)
        except ValueError as e:
            raise ValueError(f"{CONFIG_KEY}: {e}") from None
        if "d" in ckpt and d_cfg is None:
            raise ValueError(f"{CONFIG_KEY} has no discriminator config but the checkpoint holds 'd'")
    else:
        g_cfg = _infer_generator(ckpt[g_key], g_key)
        d_cfg = _infer_discriminator(ckpt["d"], "d") if "d" in ckpt else None
    if "d" not in ckpt:
        d_cfg = None

    states: dict[str, dict[str, torch.Tensor]] = {}
    g_template = Generator(g_cfg).state_dict()
    w_avg = None
    if ckpt.get("latent_avg") is not None:
        latent = ckpt["latent_avg"]
        if not isinstance(latent, torch.Tensor) or latent.numel() != g_cfg.w_dim:
            shape = list(latent.shape) if isinstance(latent, torch.Tensor) else type(latent).__name__
            raise ValueError(f"latent_avg: expected {g_cfg.w_dim} values (w_dim), got {shape}")
        w_avg = latent.detach().reshape([g_cfg.w_dim]).to(torch.float32).clone()
    for ours, theirs in NETWORK_KEYS.items():
        if theirs not in ckpt or ours == "D":
            continue
        state = _to_ours(ckpt[theirs], g_template, G_TABLE, g_cfg.img_resolution, theirs)
        if "mapping.w_avg" in state:
            state["mapping.w_avg"] = w_avg.clone() if w_avg is not None else torch.zeros_like(state["mapping.w_avg"])
        states[ours] = state
    if d_cfg is not None:
        states["D"] = _to_ours(ckpt["d"], Discriminator(d_cfg).state_dict(), D_TABLE, d_cfg.img_resolution, "d")
    return g_cfg, d_cfg, {k: states[k] for k in ("G", "G_ema", "D") if k in states}


def _check_filter(f: list[float], where: str) -> None:
    if len(f) < 2 or len(f) >= 8 or any(isinstance(v, (list, tuple)) for v in f):
        raise ValueError(f"{where}: resample_filter {list(f)} cannot be written as rosinality's blur_kernel (1-D, 2-7 taps)")


def _check_generator(cfg: GeneratorConfig) -> None:
    s, m = cfg.synthesis, cfg.mapping
    problems = []
    if s.architecture != "skip":
        problems.append(f"architecture {s.architecture!r} (rosinality's Generator is 'skip')")
    if cfg.c_dim != 0:
        problems.append(f"c_dim={cfg.c_dim} (rosinality's Generator takes no labels)")
    if cfg.z_dim != cfg.w_dim or m.layer_features not in (None, cfg.w_dim):
        problems.append(f"z_dim={cfg.z_dim}, w_dim={cfg.w_dim}, mapping layer_features={m.layer_features} (rosinality uses one style_dim)")
    if not s.use_noise:
        problems.append("use_noise=False (rosinality always injects noise)")
    if s.activation != "lrelu" or m.activation != "lrelu":
        problems.append(f"activations {s.activation!r}/{m.activation!r} (rosinality uses lrelu)")
    if s.kernel_size != 3:
        problems.append(f"kernel_size={s.kernel_size} (rosinality uses 3)")
    if cfg.img_channels != 3:
        problems.append(f"img_channels={cfg.img_channels} (rosinality's ToRGB has 3)")
    if not math.isclose(m.lr_multiplier, LR_MLP):
        problems.append(f"mapping lr_multiplier={m.lr_multiplier} (rosinality's default lr_mlp is {LR_MLP})")
    if problems:
        raise ValueError("generator cannot be written in rosinality's format: " + "; ".join(problems))
    _check_filter(list(s.resample_filter), "generator")


def _check_discriminator(cfg: DiscriminatorConfig) -> None:
    problems = []
    if cfg.architecture != "resnet":
        problems.append(f"architecture {cfg.architecture!r} (rosinality's Discriminator is 'resnet')")
    if cfg.c_dim != 0:
        problems.append(f"c_dim={cfg.c_dim} (rosinality's Discriminator takes no labels)")
    if cfg.mbstd_group_size != MBSTD_GROUP or cfg.mbstd_num_channels != 1:
        problems.append(f"minibatch stddev group {cfg.mbstd_group_size} / {cfg.mbstd_num_channels} channel(s) (rosinality uses 4 / 1)")
    if cfg.activation != "lrelu":
        problems.append(f"activation {cfg.activation!r} (rosinality uses lrelu)")
    if cfg.img_channels != 3:
        problems.append(f"img_channels={cfg.img_channels} (rosinality's fromRGB takes 3)")
    if problems:
        raise ValueError("discriminator cannot be written in rosinality's format: " + "; ".join(problems))
    _check_filter(list(cfg.resample_filter), "discriminator")


def to_rosinality(
    G_cfg: GeneratorConfig, D_cfg: DiscriminatorConfig | None, state_dicts: dict[str, dict[str, torch.Tensor]]
) -> dict[str, Any]:
    """Our networks -> a rosinality checkpoint dict (`g`, `g_ema`, `d` for 'G', 'G_ema', 'D').

    The state dicts load with `strict=True` into rosinality's `Generator(size, style_dim, n_mlp,
    channel_multiplier)` / `Discriminator(size, channel_multiplier)` when our channel counts follow its
    table (channel_max 512, channel_base 16384 * channel_multiplier); other channel layouts need a
    rosinality model with matching `channels`. Structural differences rosinality cannot express raise
    ValueError. Run-time settings it lacks (num_fp16_res, conv_clamp) are dropped: rosinality computes
    in fp32 without clamping. `latent_avg` is G_ema's `mapping.w_avg` (G's if there is no G_ema), and
    our exact configs travel under `stylegan_config` (plain data, loadable with weights_only=True).
    """
    unknown = sorted(set(state_dicts) - set(NETWORK_KEYS))
    if unknown:
        raise ValueError(f"unknown network name(s) {', '.join(unknown)}; expected G, G_ema, D")
    if "D" in state_dicts and D_cfg is None:
        raise ValueError("a discriminator state dict needs its DiscriminatorConfig")
    out: dict[str, Any] = {}
    if "G" in state_dicts or "G_ema" in state_dicts:
        _check_generator(G_cfg)
        g_template = Generator(G_cfg).state_dict()
        for name in ("G", "G_ema"):
            if name in state_dicts:
                out[NETWORK_KEYS[name]] = _to_theirs(state_dicts[name], g_template, G_TABLE, G_cfg.img_resolution, name)
        source = state_dicts["G_ema"] if "G_ema" in state_dicts else state_dicts["G"]
        if "mapping.w_avg" in source:
            out["latent_avg"] = source["mapping.w_avg"].detach().to("cpu", torch.float32).clone()
    if D_cfg is not None and "D" in state_dicts:
        _check_discriminator(D_cfg)
        out["d"] = _to_theirs(state_dicts["D"], Discriminator(D_cfg).state_dict(), D_TABLE, D_cfg.img_resolution, "D")
    out[CONFIG_KEY] = _plain(
        {"format": CONFIG_FORMAT, "G": G_cfg.to_dict(), "D": D_cfg.to_dict() if D_cfg is not None else None}, CONFIG_KEY
    )
    return out
