"""NVlabs/stylegan2 (and stylegan2-ada TensorFlow) network pickles -> our configs and state dicts.

Such a pickle is the tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects; the safe unpickler turns
each into plain data with `name`, `static_kwargs` (the build function's keyword arguments),
`components` (sub-networks, e.g. G's `mapping` and `synthesis`) and `variables` ([(name, ndarray)]).
Variable names are joined with their component path: `mapping/Dense0/weight`, `synthesis/8x8/Conv0_up/weight`.

The conversion follows NVIDIA's `legacy.py` (stylegan2-ada-pytorch), which maps these networks onto the
official PyTorch ones and therefore onto ours: constructor defaults in `_generator_init_kwargs` /
`_discriminator_init_kwargs` (read as stylegan2-ada-pytorch `training.networks` arguments), tensor names
in the tables `G_TABLE` / `D_TABLE`:

  * dense weights are stored [in, out] in TF, [out, in] in PyTorch (transposed);
  * conv weights are HWIO in TF, OIHW in PyTorch (transposed (3, 2, 0, 1));
  * the weights of the up-sampling convolutions (`Conv0_up`, and the resnet `Skip` of G) are also
    flipped spatially, because TF's upsample_conv_2d flips its kernel where the official PyTorch op
    runs conv_transpose2d on the raw one;
  * TF adds 1 to the modulation bias at run time (`mod_bias + 1`), PyTorch initialises it to 1;
  * noise inputs are `synthesis/noise{i}` [1, 1, r, r] with i = 2*log2(r) - 5 (+1 for the second conv).

Progressive-growing networks (StyleGAN2 configs B-D) name their output / input layers per level of
detail (`ToRGB_lod{k}`, `FromRGB_lod{k}`, resolution = img_resolution / 2**k); they imply architecture
'orig', whose only ToRGB / FromRGB is the full-resolution one (lod 0); the other levels are unused.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from ..models.stylegan2 import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from .official import discriminator_config_from_official, generator_config_from_official
from .tensor_map import SAME, Fields, Row, Transform, lookup, to_ours

# stylegan2-ada-pytorch's module: legacy.py builds `training.networks` objects (its defaults: no fp16,
# no clamping, w_avg_beta 0.995, fp16 blocks in fp16 on every device).
OFFICIAL_MODULE = "training.networks"

# ----------------------------------------------------------------------------- transforms (TF <-> ours)

DENSE = Transform("dense", lambda x: x.permute(1, 0), lambda x: x.permute(1, 0))  # [in, out] <-> [out, in]
CONV = Transform("conv", lambda x: x.permute(3, 2, 0, 1), lambda x: x.permute(2, 3, 1, 0))  # [kh, kw, in, out] <-> [out, in, kh, kw]
CONV_FLIP = Transform("conv_flip", lambda x: x.flip(0, 1).permute(3, 2, 0, 1),  # as CONV, kernel flipped (up-sampling convs)
                      lambda x: x.permute(2, 3, 1, 0).flip(0, 1))
MOD_BIAS = Transform("mod_bias", lambda x: x + 1, lambda x: x - 1)  # TF adds the 1 at run time
CONST = Transform("const", lambda x: x[0], lambda x: x[None])  # [1, C, 4, 4] <-> [C, 4, 4]
NOISE = Transform("noise", lambda x: x[0, 0], lambda x: x[None, None])  # [1, 1, r, r] <-> [r, r]
SOURCE = "TensorFlow variable"

# Rows: (our name regex, TF variable name template or None = derived from the config, transform).
# First full match wins. Template fields: the regex groups, plus `noise0` / `noise1` (see `_fields`).

G_TABLE: list[Row] = [
    (r"mapping\.w_avg",                                   "dlatent_avg",                           SAME),
    (r"mapping\.embed\.weight",                           "mapping/LabelEmbed/weight",             DENSE),
    (r"mapping\.embed\.bias",                             "mapping/LabelEmbed/bias",               SAME),
    (r"mapping\.fc(?P<i>\d+)\.weight",                    "mapping/Dense{i}/weight",               DENSE),
    (r"mapping\.fc(?P<i>\d+)\.bias",                      "mapping/Dense{i}/bias",                 SAME),
    (r"synthesis\.b4\.const",                             "synthesis/4x4/Const/const",             CONST),
    (r"synthesis\.b4\.conv1\.weight",                     "synthesis/4x4/Conv/weight",             CONV),
    (r"synthesis\.b4\.conv1\.bias",                       "synthesis/4x4/Conv/bias",               SAME),
    (r"synthesis\.b4\.conv1\.noise_const",                "synthesis/noise0",                      NOISE),
    (r"synthesis\.b4\.conv1\.noise_strength",             "synthesis/4x4/Conv/noise_strength",     SAME),
    (r"synthesis\.b4\.conv1\.affine\.weight",             "synthesis/4x4/Conv/mod_weight",         DENSE),
    (r"synthesis\.b4\.conv1\.affine\.bias",               "synthesis/4x4/Conv/mod_bias",           MOD_BIAS),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.weight",            "synthesis/{r}x{r}/Conv0_up/weight",     CONV_FLIP),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.bias",              "synthesis/{r}x{r}/Conv0_up/bias",       SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.noise_const",       "synthesis/noise{noise0}",               NOISE),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.noise_strength",    "synthesis/{r}x{r}/Conv0_up/noise_strength", SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.affine\.weight",    "synthesis/{r}x{r}/Conv0_up/mod_weight", DENSE),
    (r"synthesis\.b(?P<r>\d+)\.conv0\.affine\.bias",      "synthesis/{r}x{r}/Conv0_up/mod_bias",   MOD_BIAS),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.weight",            "synthesis/{r}x{r}/Conv1/weight",        CONV),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.bias",              "synthesis/{r}x{r}/Conv1/bias",          SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.noise_const",       "synthesis/noise{noise1}",               NOISE),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.noise_strength",    "synthesis/{r}x{r}/Conv1/noise_strength", SAME),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.affine\.weight",    "synthesis/{r}x{r}/Conv1/mod_weight",    DENSE),
    (r"synthesis\.b(?P<r>\d+)\.conv1\.affine\.bias",      "synthesis/{r}x{r}/Conv1/mod_bias",      MOD_BIAS),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.weight",            "synthesis/{r}x{r}/ToRGB/weight",        CONV),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.bias",              "synthesis/{r}x{r}/ToRGB/bias",          SAME),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.affine\.weight",    "synthesis/{r}x{r}/ToRGB/mod_weight",    DENSE),
    (r"synthesis\.b(?P<r>\d+)\.torgb\.affine\.bias",      "synthesis/{r}x{r}/ToRGB/mod_bias",      MOD_BIAS),
    (r"synthesis\.b(?P<r>\d+)\.skip\.weight",             "synthesis/{r}x{r}/Skip/weight",         CONV_FLIP),
    (r".*\.resample_filter",                              None,                                    None),
]

D_TABLE: list[Row] = [
    (r"b(?P<r>\d+)\.fromrgb\.weight",                     "{r}x{r}/FromRGB/weight",                CONV),
    (r"b(?P<r>\d+)\.fromrgb\.bias",                       "{r}x{r}/FromRGB/bias",                  SAME),
    (r"b(?P<r>\d+)\.conv0\.weight",                       "{r}x{r}/Conv0/weight",                  CONV),
    (r"b(?P<r>\d+)\.conv0\.bias",                         "{r}x{r}/Conv0/bias",                    SAME),
    (r"b(?P<r>\d+)\.conv1\.weight",                       "{r}x{r}/Conv1_down/weight",             CONV),
    (r"b(?P<r>\d+)\.conv1\.bias",                         "{r}x{r}/Conv1_down/bias",               SAME),
    (r"b(?P<r>\d+)\.skip\.weight",                        "{r}x{r}/Skip/weight",                   CONV),
    (r"mapping\.embed\.weight",                           "LabelEmbed/weight",                     DENSE),
    (r"mapping\.embed\.bias",                             "LabelEmbed/bias",                       SAME),
    (r"mapping\.fc(?P<i>\d+)\.weight",                    "Mapping{i}/weight",                     DENSE),
    (r"mapping\.fc(?P<i>\d+)\.bias",                      "Mapping{i}/bias",                       SAME),
    (r"b4\.conv\.weight",                                 "4x4/Conv/weight",                       CONV),
    (r"b4\.conv\.bias",                                   "4x4/Conv/bias",                         SAME),
    (r"b4\.fc\.weight",                                   "4x4/Dense0/weight",                     DENSE),
    (r"b4\.fc\.bias",                                     "4x4/Dense0/bias",                       SAME),
    (r"b4\.out\.weight",                                  "Output/weight",                         DENSE),
    (r"b4\.out\.bias",                                    "Output/bias",                           SAME),
    (r".*\.resample_filter",                              None,                                    None),
]

# TF variables with no counterpart that are fine to leave behind: the progressive-growing level of
# detail, and the per-level ToRGB / FromRGB layers other than the full-resolution one.
IGNORED_VARIABLES = (r"lod", r"synthesis/lod", r"(synthesis/)?ToRGB_lod\d+/.*", r"FromRGB_lod\d+/.*")

_G_KNOWN_IGNORED = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning", "fused_modconv")
_D_KNOWN_IGNORED = ("structure", "conditioning")


def _fields(groups: dict[str, str]) -> dict[str, Any]:
    """Template fields of a match; noise{i} counts layers: 0 at 4x4, then two per resolution."""
    f: dict[str, Any] = dict(groups)
    if groups.get("r") is not None:
        lg = int(math.log2(int(groups["r"])))
        f["noise0"] = 2 * lg - 5
        f["noise1"] = 2 * lg - 4
    return f


def tf_name(table: list[Row], key: str) -> tuple[str | None, Transform | None] | None:
    """(TF variable name, transform) of our tensor `key`; None if no row matches."""
    return lookup(table, key, _fields)


# ----------------------------------------------------------------------------- kwargs


class _Kwargs:
    """Reads static kwargs with legacy.py's defaults and remembers which names are known."""

    def __init__(self, kwargs: Any, where: str) -> None:
        if not isinstance(kwargs, dict):
            raise ValueError(f"{where}: static_kwargs is a {type(kwargs).__name__}, expected a dict")
        self.kwargs = kwargs
        self.where = where
        self.known: set[str] = set()

    def get(self, name: str, default: Any = None, none: Any = None) -> Any:
        """`default` when absent; an explicit None becomes `none` (legacy.py's generator rule)."""
        self.known.add(name)
        value = self.kwargs.get(name, default)
        value = none if value is None else value
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (tuple, np.ndarray)):
            value = np.asarray(value).tolist()
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.where}: static kwarg {name}={value!r} is not an integer")
        return value

    def check(self, ignored: tuple[str, ...]) -> None:
        self.known.update(ignored)
        unknown = sorted(str(k) for k in set(self.kwargs) - self.known)
        if unknown:
            raise ValueError(f"{self.where}: unknown TensorFlow static kwarg(s) {', '.join(unknown)}")


def _filter(value: Any) -> list[float]:
    return [1] if value is None else list(value)  # TF: resample_kernel=None means no filtering


def _generator_init_kwargs(static_kwargs: Any, where: str) -> dict[str, Any]:
    """TF G_main static kwargs -> stylegan2-ada-pytorch `Generator` init_kwargs (legacy.py's table)."""
    kw = _Kwargs(static_kwargs, where)
    init = dict(
        z_dim=kw.integer("latent_size", 512),
        c_dim=kw.integer("label_size", 0),
        w_dim=kw.integer("dlatent_size", 512),
        img_resolution=kw.integer("resolution", 1024),
        img_channels=kw.integer("num_channels", 3),
        mapping_kwargs=dict(
            num_layers=kw.integer("mapping_layers", 8),
            embed_features=kw.get("label_fmaps", None),
            layer_features=kw.get("mapping_fmaps", None),
            activation=kw.get("mapping_nonlinearity", "lrelu"),
            lr_multiplier=kw.get("mapping_lrmul", 0.01),
            w_avg_beta=kw.get("w_avg_beta", 0.995, none=1),  # None = frozen average (legacy.py)
        ),
        synthesis_kwargs=dict(
            channel_base=kw.integer("fmap_base", 16384) * 2,
            channel_max=kw.integer("fmap_max", 512),
            num_fp16_res=kw.integer("num_fp16_res", 0),
            conv_clamp=kw.get("conv_clamp", None),
            architecture=kw.get("architecture", "skip"),
            resample_filter=_filter(kw.get("resample_kernel", [1, 3, 3, 1])),
            use_noise=kw.get("use_noise", True),
            activation=kw.get("nonlinearity", "lrelu"),
        ),
    )
    kw.check(_G_KNOWN_IGNORED)
    return init


def _discriminator_init_kwargs(static_kwargs: Any, where: str) -> dict[str, Any]:
    """TF D static kwargs -> stylegan2-ada-pytorch `Discriminator` init_kwargs (legacy.py's table)."""
    kw = _Kwargs(static_kwargs, where)
    mbstd_group = kw.get("mbstd_group_size", None)  # legacy.py: absent = None = whole minibatch
    mbstd_channels = kw.get("mbstd_num_features", 1)
    if mbstd_group is not None and mbstd_group <= 1:  # TF builds no stddev layer for groups of 0 or 1
        mbstd_group, mbstd_channels = None, 0
    act = kw.get("nonlinearity", "lrelu")
    init = dict(
        c_dim=kw.integer("label_size", 0),
        img_resolution=kw.integer("resolution", 1024),
        img_channels=kw.integer("num_channels", 3),
        architecture=kw.get("architecture", "resnet"),
        channel_base=kw.integer("fmap_base", 16384) * 2,
        channel_max=kw.integer("fmap_max", 512),
        num_fp16_res=kw.integer("num_fp16_res", 0),
        conv_clamp=kw.get("conv_clamp", None),
        cmap_dim=kw.get("mapping_fmaps", None),
        block_kwargs=dict(activation=act, resample_filter=_filter(kw.get("resample_kernel", [1, 3, 3, 1])),
                          freeze_layers=kw.integer("freeze_layers", 0)),
        mapping_kwargs=dict(num_layers=kw.integer("mapping_layers", 0), embed_features=kw.get("mapping_fmaps", None),
                            layer_features=kw.get("mapping_fmaps", None), activation=act,
                            lr_multiplier=kw.get("mapping_lrmul", 0.1)),
        epilogue_kwargs=dict(mbstd_group_size=mbstd_group, mbstd_num_channels=mbstd_channels, activation=act),
    )
    kw.check(_D_KNOWN_IGNORED)
    return init


# ----------------------------------------------------------------------------- variables


def _collect(net: Any, where: str) -> dict[str, np.ndarray]:
    """All variables of `net` and its components, named by component path ('mapping/Dense0/weight')."""
    params: dict[str, np.ndarray] = {}

    def recurse(prefix: str, node: Any, depth: int) -> None:
        if depth > 16:
            raise ValueError(f"{where}: components nest too deeply")
        for attr in ("variables", "components"):
            if not hasattr(node, attr):
                raise ValueError(f"{where}: {type(node).__name__} object has no '{attr}'; not a TensorFlow network")
        for item in node.variables:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
                raise ValueError(f"{where}: malformed variable entry under {prefix or '/'}")
            name, value = prefix + item[0], item[1]
            if name in params:
                raise ValueError(f"{where}: duplicate variable {name}")
            params[name] = np.asarray(value)
        if not isinstance(node.components, dict):
            raise ValueError(f"{where}: components of {prefix or 'the network'} are not a dict")
        for comp_name, comp in node.components.items():
            recurse(f"{prefix}{comp_name}/", comp, depth + 1)

    recurse("", net, 0)
    return params


def _aliases(params: dict[str, np.ndarray], pattern: str, template: str, img_resolution: int) -> dict[str, str]:
    """Per-level names (`..._lod{k}/rest`) -> the `{r}x{r}` names the tables use."""
    out = {}
    for name in params:
        m = re.fullmatch(pattern, name)
        if m:
            r = img_resolution // 2 ** int(m.group("lod"))
            out[template.format(r=r, rest=m.group("rest"))] = name
    return out


def _fill(params: dict[str, np.ndarray], aliases: dict[str, str], template: dict[str, torch.Tensor], table: list[Row],
          ignored: tuple[str, ...], where: str, fields: Fields = _fields) -> dict[str, torch.Tensor]:
    """Our state dict shaped like `template`, values from the TF variables via `table` (templates filled by `fields`)."""
    return to_ours(template, params, table, fields, source=SOURCE, where=where, aliases=aliases, ignored=ignored)


def _network(net: Any, where: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    for attr in ("static_kwargs", "components", "variables"):
        if not hasattr(net, attr):
            raise ValueError(f"{where}: {type(net).__name__} object has no '{attr}'; not a TensorFlow network")
    return net.static_kwargs, _collect(net, where)


def _convert_generator(net: Any, where: str) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    static_kwargs, params = _network(net, where)
    init = _generator_init_kwargs(static_kwargs, where)
    res = init["img_resolution"]
    aliases = _aliases(params, r"(synthesis/)?ToRGB_lod(?P<lod>\d+)/(?P<rest>.*)", "synthesis/{r}x{r}/ToRGB/{rest}", res)
    if aliases:
        init["synthesis_kwargs"]["architecture"] = "orig"
    cfg = generator_config_from_official(init, OFFICIAL_MODULE)
    ignored: tuple[str, ...] = IGNORED_VARIABLES
    if not cfg.synthesis.use_noise:  # noise inputs built but unused
        ignored += (r"synthesis/noise\d+", r"synthesis/\d+x\d+/Conv(0_up|1)?/noise_strength")
    state = _fill(params, aliases, Generator(cfg).state_dict(), G_TABLE, ignored, where)
    return cfg, state


def _convert_discriminator(net: Any, where: str) -> tuple[DiscriminatorConfig, dict[str, torch.Tensor]]:
    static_kwargs, params = _network(net, where)
    init = _discriminator_init_kwargs(static_kwargs, where)
    aliases = _aliases(params, r"FromRGB_lod(?P<lod>\d+)/(?P<rest>.*)", "{r}x{r}/FromRGB/{rest}", init["img_resolution"])
    if aliases:
        init["architecture"] = "orig"
    cfg = discriminator_config_from_official(init, OFFICIAL_MODULE)
    state = _fill(params, aliases, Discriminator(cfg).state_dict(), D_TABLE, IGNORED_VARIABLES, where)
    return cfg, state


def from_tf_networks(G: Any, D: Any, Gs: Any) -> tuple[GeneratorConfig, DiscriminatorConfig, dict[str, dict[str, torch.Tensor]]]:
    """TF (G, D, Gs) -> (G config, D config, {'G', 'D', 'G_ema': our state dicts}); G_ema comes from Gs.

    Unknown static kwargs, TF variables without a counterpart, missing variables and shape mismatches
    raise ValueError naming them.
    """
    g_cfg, g_state = _convert_generator(G, "G")
    gs_cfg, gs_state = _convert_generator(Gs, "Gs")
    if g_cfg != gs_cfg:
        raise ValueError(f"G and Gs describe different generators:\n  G:  {g_cfg}\n  Gs: {gs_cfg}")
    d_cfg, d_state = _convert_discriminator(D, "D")
    return gs_cfg, d_cfg, {"G": g_state, "D": d_state, "G_ema": gs_state}
