"""NVlabs/stylegan (2019) TensorFlow network pickles -> our `models.stylegan1` configs and state dicts.

Such a pickle is the tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects built by
`training.networks_stylegan.G_style` (components `mapping` = G_mapping, `synthesis` = G_synthesis) and
`D_basic`. The safe unpickler gives each as plain data; variables are named by component path, as in
`io.tf_stylegan2`: `mapping/Dense0/weight`, `synthesis/4x4/Const/StyleMod/weight`, `synthesis/noise3`.
The NVIDIA PyTorch converters refuse these files; the table below maps every variable explicitly:

  * dense weights are [in, out] in TF, [out, in] here; conv weights HWIO in TF, OIHW here. Unlike
    StyleGAN2, no kernel is flipped: our fused up-sampling conv is TF's transposed convolution itself;
  * the learned constant is [1, C, 4, 4] in TF, [C, 4, 4] here; noise inputs `synthesis/noise{i}` are
    [1, 1, r, r] with i the layer index (2 per resolution from 4x4: 2*log2(r) - 4, +1 for Conv1);
  * per-layer scopes: `4x4/Const` (the epilogue of the constant), `4x4/Conv`, `{r}x{r}/Conv0_up`,
    `{r}x{r}/Conv1`, each with `Noise/weight`, `bias`, `StyleMod/weight|bias`; `ToRGB_lod{k}` per level;
  * the level of detail is G's own `lod` (G_style copies it into the synthesis network before running
    it, so `synthesis/lod` is redundant) and D's `lod`.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import numpy as np
import torch

from ..models.stylegan1 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, MappingConfig, SynthesisConfig
from .errors import NetworkLoadError
from .tensor_map import SAME, Row, Transform, lookup
from .tf_stylegan2 import CONST, CONV, DENSE, NOISE, _fill, _Kwargs, _network

# Rows: (our name regex, TF variable name template or None = derived from the config, transform).
# Template fields: the regex groups plus `scope` (the TF layer scope), `noise` (noise input index) and
# `lod` (level of detail of resolution r); see `_fields`.
G_TABLE: list[Row] = [
    (r"mapping\.w_avg",                                      "dlatent_avg",                          SAME),
    (r"mapping\.embed",                                      "mapping/LabelConcat/weight",           SAME),
    (r"mapping\.fc(?P<i>\d+)\.weight",                       "mapping/Dense{i}/weight",              DENSE),
    (r"mapping\.fc(?P<i>\d+)\.bias",                         "mapping/Dense{i}/bias",                SAME),
    (r"synthesis\.lod",                                      "lod",                                  SAME),
    (r"synthesis\.b4\.const",                                "synthesis/4x4/Const/const",            CONST),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.conv\.weight", "synthesis/{scope}/weight",           CONV),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.noise_const",  "synthesis/noise{noise}",             NOISE),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.noise_strength", "synthesis/{scope}/Noise/weight",   SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.bias",       "synthesis/{scope}/bias",               SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.affine\.weight", "synthesis/{scope}/StyleMod/weight", DENSE),
    (r"synthesis\.b(?P<r>\d+)\.conv(?P<j>[01])\.affine\.bias", "synthesis/{scope}/StyleMod/bias",    SAME),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.weight",               "synthesis/ToRGB_lod{lod}/weight",      CONV),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.bias",                 "synthesis/ToRGB_lod{lod}/bias",        SAME),
    (r".*\.blur_filter",                                     None,                                   None),
]

D_TABLE: list[Row] = [
    (r"lod",                                                 "lod",                                  SAME),
    (r"b(?P<r>\d+)\.fromrgb\.weight",                        "FromRGB_lod{lod}/weight",              CONV),
    (r"b(?P<r>\d+)\.fromrgb\.bias",                          "FromRGB_lod{lod}/bias",                SAME),
    (r"b(?P<r>\d+)\.conv0\.weight",                          "{r}x{r}/Conv0/weight",                 CONV),
    (r"b(?P<r>\d+)\.conv0\.bias",                            "{r}x{r}/Conv0/bias",                   SAME),
    (r"b(?P<r>\d+)\.conv1\.weight",                          "{r}x{r}/Conv1_down/weight",            CONV),
    (r"b(?P<r>\d+)\.conv1\.bias",                            "{r}x{r}/Conv1_down/bias",              SAME),
    (r"b4\.conv\.weight",                                    "4x4/Conv/weight",                      CONV),
    (r"b4\.conv\.bias",                                      "4x4/Conv/bias",                        SAME),
    (r"b4\.fc\.weight",                                      "4x4/Dense0/weight",                    DENSE),
    (r"b4\.fc\.bias",                                        "4x4/Dense0/bias",                      SAME),
    (r"b4\.out\.weight",                                     "4x4/Dense1/weight",                    DENSE),
    (r"b4\.out\.bias",                                       "4x4/Dense1/bias",                      SAME),
    (r".*\.blur_filter",                                     None,                                   None),
]

G_IGNORED = (r"synthesis/lod",)  # a copy of G's `lod`

# Static kwargs that only steer training or graph construction.
_G_KNOWN_IGNORED = ("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val", "style_mixing_prob",
                    "structure", "randomize_noise", "is_template_graph", "force_clean_graph")
_D_KNOWN_IGNORED = ("structure", "is_template_graph")
# Static kwargs whose only supported value is the paper's (name -> value).
_G_FIXED = {"fmap_decay": 1.0, "use_wscale": True, "normalize_latents": True, "use_styles": True, "const_input_layer": True,
            "use_pixel_norm": False, "use_instance_norm": True, "dtype": "float32"}
_D_FIXED = {"fmap_decay": 1.0, "use_wscale": True, "dtype": "float32"}


def is_stylegan1(G: Any, D: Any) -> bool:
    """Whether a TF (G, D, Gs) triple was built by NVlabs/stylegan's G_style / D_basic."""
    return getattr(G, "build_func_name", "") == "G_style" or getattr(D, "build_func_name", "") == "D_basic"


def _fields(groups: dict[str, str], img_resolution_log2: int) -> dict[str, Any]:
    f: dict[str, Any] = dict(groups)
    if groups.get("r") is not None:
        r = int(groups["r"])
        lg = int(math.log2(r))
        f["lod"] = img_resolution_log2 - lg
        if groups.get("j") is not None:
            j = int(groups["j"])
            f["noise"] = 2 * lg - 4 + j
            f["scope"] = ("4x4/Const", "4x4/Conv")[j] if r == 4 else f"{r}x{r}/" + ("Conv0_up", "Conv1")[j]
    return f


def tf_name(table: list[Row], key: str, img_resolution: int) -> tuple[str | None, Transform | None] | None:
    """(TF variable name, transform) of our tensor `key`; None if no row matches."""
    return lookup(table, key, functools.partial(_fields, img_resolution_log2=int(math.log2(img_resolution))))


def _fixed(kw: _Kwargs, fixed: dict[str, Any]) -> None:
    for name, expected in fixed.items():
        value = kw.get(name, expected)
        if value != expected:
            raise NetworkLoadError(f"{kw.where}: static kwarg {name}={value!r} is not supported (only {expected!r})")


def _lod_count(params: dict[str, np.ndarray], pattern: str) -> int | None:
    lods = [int(m.group(1)) for n in params if (m := re.fullmatch(pattern, n))]
    return max(lods) + 1 if lods else None


def _generator_config(static_kwargs: Any, params: dict[str, np.ndarray], where: str) -> GeneratorConfig:
    """G_style static kwargs (TF defaults), with sizes the kwargs leave out read from the variables' shapes."""
    kw = _Kwargs(static_kwargs, where)
    _fixed(kw, _G_FIXED)
    levels = _lod_count(params, r"synthesis/ToRGB_lod(\d+)/weight")
    rgb = params.get("synthesis/ToRGB_lod0/weight")
    embed = params.get("mapping/LabelConcat/weight")
    dense0 = params.get("mapping/Dense0/weight")
    avg = params.get("dlatent_avg")
    c_dim = kw.integer("label_size", embed.shape[0] if embed is not None and embed.ndim == 2 else 0)
    z_default = embed.shape[1] if embed is not None and embed.ndim == 2 else (dense0.shape[0] if dense0 is not None and dense0.ndim == 2 else 512)
    act = kw.get("nonlinearity", "lrelu")
    mapping_act = kw.get("mapping_nonlinearity", "lrelu")
    if mapping_act != act:
        raise NetworkLoadError(f"{where}: mapping_nonlinearity={mapping_act!r} differs from nonlinearity={act!r}; not supported")
    mapping_layers = _lod_count(params, r"mapping/Dense(\d+)/weight")
    cfg = GeneratorConfig(
        z_dim=kw.integer("latent_size", z_default),
        c_dim=c_dim,
        w_dim=kw.integer("dlatent_size", avg.shape[0] if avg is not None and avg.ndim == 1 else 512),
        img_resolution=kw.integer("resolution", 2 ** (levels + 1) if levels else 1024),
        img_channels=kw.integer("num_channels", rgb.shape[-1] if rgb is not None and rgb.ndim == 4 else 3),
        mapping=MappingConfig(num_layers=kw.integer("mapping_layers", mapping_layers or 8), layer_features=kw.integer("mapping_fmaps", 512),
                              lr_multiplier=float(kw.get("mapping_lrmul", 0.01)), w_avg_beta=kw.get("dlatent_avg_beta", 0.995),
                              activation=act),
        synthesis=SynthesisConfig(style="adain", channel_base=kw.integer("fmap_base", 8192), channel_max=kw.integer("fmap_max", 512),
                                  activation=act, use_noise=bool(kw.get("use_noise", True)),
                                  blur_filter=kw.get("blur_filter", [1, 2, 1]), fused_scale=kw.get("fused_scale", "auto")),
    )
    kw.check(_G_KNOWN_IGNORED)
    return cfg


def _discriminator_config(static_kwargs: Any, params: dict[str, np.ndarray], where: str) -> DiscriminatorConfig:
    """D_basic static kwargs (TF defaults), with sizes the kwargs leave out read from the variables' shapes."""
    kw = _Kwargs(static_kwargs, where)
    _fixed(kw, _D_FIXED)
    levels = _lod_count(params, r"FromRGB_lod(\d+)/weight")
    rgb = params.get("FromRGB_lod0/weight")
    out = params.get("4x4/Dense1/weight")
    cfg = DiscriminatorConfig(
        c_dim=kw.integer("label_size", out.shape[1] if out is not None and out.ndim == 2 and out.shape[1] > 1 else 0),
        img_resolution=kw.integer("resolution", 2 ** (levels + 1) if levels else 32),
        img_channels=kw.integer("num_channels", rgb.shape[2] if rgb is not None and rgb.ndim == 4 else 1),
        style="basic",
        channel_base=kw.integer("fmap_base", 8192),
        channel_max=kw.integer("fmap_max", 512),
        activation=kw.get("nonlinearity", "lrelu"),
        mbstd_group_size=kw.integer("mbstd_group_size", 4),
        mbstd_num_channels=kw.integer("mbstd_num_features", 1),
        blur_filter=kw.get("blur_filter", [1, 2, 1]),
        fused_scale=kw.get("fused_scale", "auto"),
    )
    kw.check(_D_KNOWN_IGNORED)
    return cfg


def _state(net: torch.nn.Module, params: dict[str, np.ndarray], table: list[Row], ignored: tuple[str, ...], res: int,
           where: str) -> dict[str, torch.Tensor]:
    return _fill(params, {}, net.state_dict(), table, ignored, where,
                 fields=functools.partial(_fields, img_resolution_log2=int(math.log2(res))))


def _convert(net: Any, where: str, generator: bool) -> tuple[Any, dict[str, torch.Tensor]]:
    try:
        static_kwargs, params = _network(net, where)
        if generator:
            g = _generator_config(static_kwargs, params, where)
            return g, _state(Generator(g), params, G_TABLE, G_IGNORED, g.img_resolution, where)
        d = _discriminator_config(static_kwargs, params, where)
        return d, _state(Discriminator(d), params, D_TABLE, (), d.img_resolution, where)
    except NetworkLoadError:
        raise
    except ValueError as e:
        raise NetworkLoadError(str(e)) from None


def from_tf_networks(G: Any, D: Any, Gs: Any) -> tuple[GeneratorConfig, DiscriminatorConfig, dict[str, dict[str, torch.Tensor]]]:
    """TF StyleGAN (G, D, Gs) -> (G config, D config, {'G', 'D', 'G_ema': our state dicts}); G_ema comes from Gs.

    Unknown or unsupported static kwargs, TF variables without a counterpart, missing variables and
    shape mismatches raise NetworkLoadError naming them.
    """
    g_cfg, g_state = _convert(G, "G", generator=True)
    gs_cfg, gs_state = _convert(Gs, "Gs", generator=True)
    if g_cfg != gs_cfg:
        raise NetworkLoadError(f"G and Gs describe different generators: G {g_cfg} vs Gs {gs_cfg}")
    d_cfg, d_state = _convert(D, "D", generator=False)
    return gs_cfg, d_cfg, {"G": g_state, "D": d_state, "G_ema": gs_state}

