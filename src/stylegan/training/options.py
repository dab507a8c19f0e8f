"""Training options: the `--cfg` presets with NVIDIA's hyper-parameters, and their resolution against a
dataset into one `TrainingOptions` (what `training_options.json` records and `--dry-run` prints)."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..data.dataset import DatasetInfo
from ..models import stylegan1, stylegan2, stylegan3
from ..models.config import JsonConfig
from ..models.registry import NetworkSpec
from .augment import AUGMENT_PRESETS
from .growing import GrowingConfig
from .loss import LossConfig


class OptionsError(ValueError):
    """Training options that cannot work together; the message names the setting."""


# StyleGAN2-ADA's configuration table (train.py `cfg_specs`): reference GPU count, total kimg, minibatch,
# minibatch-std group, channel multiplier (x 32768), learning rate, R1 gamma, G_ema half-life (kimg),
# G_ema ramp-up, mapping depth. `auto` derives the -1 entries from the resolution and GPU count.
ADA_TABLE: dict[str, dict[str, Any]] = {
    "auto":      dict(ref_gpus=-1, kimg=25000,  mb=-1, mbstd=-1, fmaps=-1,  lrate=-1,     gamma=-1,   ema=-1,  ramp=0.05, map=2),
    "stylegan2": dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    "paper256":  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    "paper512":  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    "paper1024": dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    "cifar":     dict(ref_gpus=2,  kimg=100000, mb=64, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
}
# The StyleGAN2 paper's Table 1 (NVlabs/stylegan2 run_training.py --config-id config-a ... config-f): each
# configuration is its predecessor plus one step.
PAPER_CONFIGS: dict[str, str] = {
    "paper-a": "StyleGAN (2019): AdaIN, progressive growing, R1 every minibatch",
    "paper-b": "A + weight demodulation (revised normalisation, noise and bias outside the style block)",
    "paper-c": "B + lazy regularisation (R1 every 16 minibatches)",
    "paper-d": "C + path length regularisation",
    "paper-e": "D + no growing: skip G, residual D",
    "paper-f": "E + large networks (twice the channels)",
}
CONFIGS = (*ADA_TABLE, "stylegan3-t", "stylegan3-r", "demo", *PAPER_CONFIGS)
AugMode = Literal["ada", "noaug", "fixed"]
AUG_MODES: tuple[str, ...] = typing.get_args(AugMode)
# Flags that may change when a run continues (`--resume RUN_DIR`); everything else is fixed by the run.
RESUMABLE_FLAGS = ("kimg", "tick", "snap", "batch", "batch_gpu", "gpus", "workers", "metrics")
# Progressive growing of configs A-D (run_training.py): start at 8x8, 600 kimg per level and per fade,
# per-resolution minibatch (for 8 GPUs) and learning rates.
PAPER_GROWING = dict(start_res=8, training_kimg=600.0, transition_kimg=600.0, batch={8: 256, 16: 128, 32: 64, 64: 32},
                     glr={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}, dlr={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003})


@dataclass
class TrainingOptions(JsonConfig):
    """Everything a training run needs besides the data itself (`training_options.json`, JSON round trip via
    `to_dict` / `from_dict`)."""

    describe = "training options"
    data: str  # dataset zip or folder
    dataset: DatasetInfo  # what the run recorded about the training set
    cfg: str  # the --cfg preset the run started from
    G: NetworkSpec  # the generator's architecture
    D: NetworkSpec  # the discriminator's architecture
    gpus: int = 1  # processes (one per GPU)
    batch: int = 32  # total minibatch size
    batch_gpu: int = 32  # images per process per accumulation round
    kimg: float = 25000  # training length in thousands of real images shown to D
    tick: float = 4  # kimg between progress lines
    snap: int = 50  # ticks between snapshots (images, checkpoint, metrics)
    seed: int = 0  # random seed
    workers: int = 3  # DataLoader worker processes
    cond: bool = False  # condition on the dataset's labels
    mirror: bool = False  # add x-flipped copies of the images
    aug: AugMode = "ada"  # augmentation: 'ada' (adaptive p), 'noaug' or 'fixed' (constant p)
    augpipe: str = "bgc"  # augmentation pipeline (training.augment.AUGMENT_PRESETS)
    augment_p: float = 0.0  # initial augmentation probability (--p for --aug fixed)
    ada_target: float = 0.6  # ADA's target for E[sign(D(real))]
    ada_interval: int = 4  # minibatches between ADA adjustments
    ada_kimg: float = 500  # ADA speed: kimg for p to rise or fall by 1
    metrics: list[str] = field(default_factory=list)  # metrics computed at every snapshot
    glr: float = 0.002  # G learning rate
    dlr: float = 0.002  # D learning rate
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas of G and D
    eps: float = 1e-8  # Adam epsilon
    G_reg_interval: int | None = 4  # lazy path-length regularisation every N minibatches, None = in every minibatch
    D_reg_interval: int | None = 16  # lazy R1 regularisation every N minibatches, None = in every minibatch
    ema_kimg: float = 10.0  # half-life of G_ema in kimg
    ema_rampup: float | None = 0.05  # G_ema ramp-up: half-life at most this times the kimg seen, None = no ramp-up
    loss: LossConfig = field(default_factory=LossConfig)  # loss and regularisation weights
    growing: GrowingConfig | None = None  # progressive growing (StyleGAN 2019, StyleGAN2 configs A-D)
    resume: str | None = None  # network file fine-tuned from (transfer learning)
    freezed: int = 0  # frozen layers of D when fine-tuning
    keep_snapshots: int = 5  # snapshots kept in the run folder (the newest)
    desc: str = ""  # text added to the run folder's name


def describe(opts: TrainingOptions) -> list[str]:
    """A short human summary of the resolved options."""
    syn = opts.G.config.synthesis
    style = getattr(syn, "style", None)  # StyleGAN (2019): 'adain' or 'demod'
    ds = opts.dataset
    gr = opts.growing
    return [
        f"data:      {opts.data} ({ds.num_images:,} images{' x2 mirrored' if opts.mirror else ''}, {ds.resolution}x{ds.resolution}, "
        f"{ds.channels} channel(s), {'conditional on ' + str(ds.label_dim) + ' labels' if opts.cond else 'unconditional'})",
        f"config:    {opts.cfg} ({opts.G.family} G{' ' + style if style else ''}, {opts.D.family} D, "
        f"channel base {syn.channel_base}, max {syn.channel_max}, mapping depth {opts.G.config.mapping.num_layers})",
        f"batch:     {opts.batch} total, {opts.batch_gpu} per GPU per round, {opts.gpus} process(es)",
        f"optimiser: Adam G lr {opts.glr:g}, D lr {opts.dlr:g}, betas {opts.betas}, lazy reg G every {opts.G_reg_interval}, D every {opts.D_reg_interval}",
        f"loss:      R1 gamma {opts.loss.r1_gamma:g}, path length weight {opts.loss.pl_weight:g}, style mixing {opts.loss.style_mixing_prob:g}, "
        f"D blur sigma {opts.loss.blur_init_sigma:g} over {opts.loss.blur_fade_kimg:g} kimg",
        f"G_ema:     half-life {opts.ema_kimg:g} kimg, ramp-up {opts.ema_rampup}",
        f"augment:   {opts.aug}" + (f" ({opts.augpipe}, p {opts.augment_p:g}" + (f", target {opts.ada_target:g}, ada_kimg {opts.ada_kimg:g})" if opts.aug == "ada" else ")")
                                   if opts.aug != "noaug" else ""),
        f"length:    {opts.kimg:g} kimg, tick {opts.tick:g} kimg, snapshot every {opts.snap} ticks, metrics {','.join(opts.metrics) or 'none'}",
    ] + ([f"growing:   from {gr.start_res}x{gr.start_res}, {gr.training_kimg:g} kimg per level + {gr.transition_kimg:g} kimg fade; "
          f"batch {gr.batch or 'fixed'}, G lr {gr.glr or 'fixed'}, D lr {gr.dlr or 'fixed'}"] if gr is not None else [])


def _ada_row(cfg: str, res: int, gpus: int) -> dict[str, Any]:
    spec = dict(ADA_TABLE[cfg])
    if cfg == "auto":  # StyleGAN2-ADA's heuristics
        spec["ref_gpus"] = gpus
        spec["mb"] = max(min(gpus * min(4096 // res, 32), 64), gpus)
        spec["mbstd"] = min(spec["mb"] // gpus, 4)
        spec["fmaps"] = 1 if res >= 512 else 0.5
        spec["lrate"] = 0.002 if res >= 1024 else 0.0025
        spec["gamma"] = 0.0002 * res**2 / spec["mb"]
        spec["ema"] = spec["mb"] * 10 / 32
    return spec


def resolve(flags: dict[str, Any], info: DatasetInfo, source_networks: dict[str, NetworkSpec] | None = None) -> TrainingOptions:
    """Turn CLI flags (None = not given) and the dataset into options.

    `source_networks` ({"G": spec, "D": spec} read from a `--resume` network file) fixes the architecture:
    the run fine-tunes that network, so the preset's network settings do not apply.
    """
    cfg = flags.get("cfg") or "auto"
    if cfg not in CONFIGS:
        raise OptionsError(f"--cfg {cfg}: unknown; choose from {', '.join(CONFIGS)}")

    def get(name: str, default: Any) -> Any:
        return default if flags.get(name) is None else flags[name]

    gpus = get("gpus", 1)
    res, channels = info.resolution, info.channels
    cond = bool(get("cond", False))
    if cond and not info.has_labels:
        raise OptionsError(f"--cond: {info.path} has no labels (no dataset.json with a 'labels' list)")
    c_dim = info.label_dim if cond else 0

    loss = LossConfig()
    ada_batch_gpu = None
    opts: dict[str, Any] = dict(ema_rampup=0.05, G_reg_interval=4)
    if cfg in ADA_TABLE:
        spec = _ada_row(cfg, res, gpus)
        cbase, cmax, mbstd, map_depth = int(spec["fmaps"] * 32768), 512, spec["mbstd"], spec["map"]
        batch, glr, dlr, gamma, kimg = spec["mb"], spec["lrate"], spec["lrate"], spec["gamma"], spec["kimg"]
        opts.update(ema_kimg=spec["ema"], ema_rampup=spec["ramp"])
        ada_batch_gpu = batch // spec["ref_gpus"]  # the table's per-GPU batch (its reference GPU count)
        zw, G_arch, D_arch = 512, "skip", "resnet"
        loss.style_mixing_prob, loss.pl_weight = 0.9, 2.0
        if cfg == "cifar":
            loss.style_mixing_prob = loss.pl_weight = 0.0
            D_arch = "orig"
            opts["G_reg_interval"] = None
    elif cfg == "demo":  # a 2-core CPU: small networks, 32x32, no augmentation
        cbase, cmax, mbstd, map_depth, zw = 2048, 64, 4, 2, 64
        batch, glr, dlr, gamma, kimg = 32, 0.005, 0.005, 0.05, 40  # lr 0.005: clean shapes by 10 kimg, 0.0025 still striped
        opts.update(ema_kimg=2.0)
        G_arch, D_arch = "skip", "resnet"
        loss.style_mixing_prob, loss.pl_weight = 0.9, 2.0
    elif cfg in PAPER_CONFIGS:  # NVlabs/stylegan2 run_training.py, configs A-F
        large, growing = cfg == "paper-f", cfg in ("paper-a", "paper-b", "paper-c", "paper-d")
        cbase = 32768 if large else 16384  # TF fmap_base 16 << 10 (F) or 8 << 10 (A-E), in channel_base units
        cmax, mbstd, map_depth, zw = 512, 4, 8, 512
        batch, glr, dlr, gamma, kimg = 32, 0.002, 0.002, 10.0, 25000
        G_arch, D_arch = "skip", "resnet"
        opts.update(ema_kimg=10.0, ema_rampup=None, G_reg_interval=4, D_reg_interval=16)
        loss.style_mixing_prob, loss.pl_weight = 0.9, 2.0
        if cfg in ("paper-a", "paper-b", "paper-c"):  # no path length regularisation
            loss.pl_weight = 0.0
            opts["G_reg_interval"] = None
        if cfg in ("paper-a", "paper-b"):  # no lazy regularisation
            opts["D_reg_interval"] = None
        if growing:
            glr = dlr = 0.001
            opts["growing"] = GrowingConfig(**PAPER_GROWING)
    else:  # NVlabs/stylegan3 train.py
        cbase, cmax, mbstd, map_depth, zw = 32768, 512, 4, 2, 512
        batch, glr, dlr, gamma, kimg = 32, 0.0025, 0.002, None, 25000
        G_arch, D_arch = None, "resnet"
        opts["G_reg_interval"] = None

    batch = get("batch", batch)
    batch_gpu = get("batch_gpu", ada_batch_gpu if ada_batch_gpu is not None and flags.get("batch") is None else batch // gpus)
    growing: GrowingConfig | None = opts.pop("growing", None)
    if flags.get("resume") is not None:  # fine-tuning a grown network
        growing = None
    if growing is not None:
        growing = _growing_overrides(growing, flags, res, gpus)
    for name in ("G_reg_interval", "D_reg_interval"):
        if flags.get(name) is not None:  # 0 = no lazy regularisation (regularise in every minibatch)
            opts[name] = flags[name] or None
    cbase, cmax = get("cbase", cbase), get("cmax", cmax)
    map_depth, mbstd = get("map_depth", map_depth), get("mbstd_group", mbstd)
    fp32 = bool(get("fp32", False))
    fp16_res, clamp = (0, None) if fp32 else (4, 256)
    gamma = get("gamma", gamma)
    if gamma is None:  # StyleGAN2-ADA's heuristic where NVlabs/stylegan3 requires --gamma
        gamma = 0.0002 * res**2 / batch
    loss.r1_gamma = float(gamma)
    if cfg in PAPER_CONFIGS:
        fp16_res, clamp = 0, None  # the paper's TF code trained in float32
    if cfg.startswith("stylegan3"):
        opts["ema_kimg"] = batch * 10 / 32
        if cfg == "stylegan3-r":
            loss.blur_init_sigma, loss.blur_fade_kimg = 10.0, batch * 200 / 32

    _check_batch(batch, batch_gpu, gpus, mbstd)
    if growing is not None:
        for r, b in growing.batch.items():
            _check_batch(b, growing.batch_gpu.get(r, batch_gpu), gpus, mbstd)
    if source_networks is not None:
        G_spec, D_spec = _transfer_specs(source_networks, info, c_dim, get("freezed", 0), flags.get("resume"))
    else:
        if cfg.startswith("stylegan3"):
            g = stylegan3.stylegan3_config(cfg, res, z_dim=zw, w_dim=zw, c_dim=c_dim, img_channels=channels, channel_base=cbase, channel_max=cmax)
            g.mapping.num_layers = map_depth
            g.synthesis.num_fp16_res, g.synthesis.conv_clamp = fp16_res, clamp
            g.synthesis.magnitude_ema_beta = 0.5 ** (batch / (20 * 1e3))
            G_spec = NetworkSpec("stylegan3", "generator", g)
        elif cfg in ("paper-a", "paper-b", "paper-c", "paper-d"):
            g1 = stylegan1.GeneratorConfig(z_dim=zw, c_dim=c_dim, w_dim=zw, img_resolution=res, img_channels=channels,
                                           mapping=stylegan1.MappingConfig(num_layers=map_depth),
                                           synthesis=stylegan1.SynthesisConfig(style="adain" if cfg == "paper-a" else "demod",
                                                                               channel_base=cbase // 2, channel_max=cmax))
            G_spec = NetworkSpec("stylegan1", "generator", g1)
        else:
            g = stylegan2.GeneratorConfig(
                z_dim=zw, c_dim=c_dim, w_dim=zw, img_resolution=res, img_channels=channels,
                mapping=stylegan2.MappingConfig(num_layers=map_depth),
                synthesis=stylegan2.SynthesisConfig(channel_base=cbase, channel_max=cmax, num_fp16_res=fp16_res, conv_clamp=clamp,
                                                    architecture=G_arch, fused_modconv_default="inference_only"),
            )
            G_spec = NetworkSpec("stylegan2", "generator", g)
        d = stylegan2.DiscriminatorConfig(c_dim=c_dim, img_resolution=res, img_channels=channels, architecture=D_arch,
                                          channel_base=cbase, channel_max=cmax, num_fp16_res=fp16_res, conv_clamp=clamp,
                                          mbstd_group_size=mbstd, freeze_layers=get("freezed", 0))
        D_spec = NetworkSpec("stylegan2", "discriminator", d)
        if G_spec.family == "stylegan1":
            d1 = stylegan1.DiscriminatorConfig(c_dim=c_dim, img_resolution=res, img_channels=channels,
                                               style="basic" if cfg == "paper-a" else "revised", channel_base=cbase // 2,
                                               channel_max=cmax, mbstd_group_size=mbstd)
            D_spec = NetworkSpec("stylegan1", "discriminator", d1)

    aug = get("aug", "noaug" if cfg == "demo" or cfg in PAPER_CONFIGS else "ada")
    if aug not in AUG_MODES:
        raise OptionsError(f"--aug {aug}: choose from {', '.join(AUG_MODES)}")
    augpipe = get("augpipe", "bgc")
    if augpipe not in AUGMENT_PRESETS:
        raise OptionsError(f"--augpipe {augpipe}: choose from {', '.join(AUGMENT_PRESETS)}")
    if flags.get("p") is not None and aug != "fixed":
        raise OptionsError("--p applies only with --aug fixed")
    resume = flags.get("resume")
    if resume is not None:  # NVlabs: a fine-tuning run adapts faster and starts without ramp-ups
        opts.update(ada_kimg=100, ema_rampup=None)
        loss.blur_init_sigma = 0.0
    if flags.get("ema_kimg") is not None:
        if flags["ema_kimg"] <= 0:
            raise OptionsError(f"--ema-kimg {flags['ema_kimg']}: must be > 0")
        opts["ema_kimg"] = float(flags["ema_kimg"])
    tick = get("tick", 1 if cfg == "demo" else 4)
    snap = get("snap", 5 if cfg == "demo" else 50)
    if tick <= 0 or snap < 1:
        raise OptionsError("--tick must be > 0 and --snap >= 1")
    return TrainingOptions(
        data=str(flags["data"]), dataset=info, cfg=cfg, G=G_spec, D=D_spec, gpus=gpus, batch=batch, batch_gpu=batch_gpu,
        kimg=get("kimg", kimg), tick=tick, snap=snap, seed=get("seed", 0), workers=get("workers", 3 if cfg != "demo" else 1),
        cond=cond, mirror=bool(get("mirror", False)), aug=aug, augpipe=augpipe,
        augment_p=float(get("p", 0.2)) if aug == "fixed" else 0.0, ada_target=float(get("target", 0.6)),
        metrics=list(get("metrics", [])), glr=float(get("glr", glr)), dlr=float(get("dlr", dlr)), loss=loss,
        resume=None if resume is None else str(resume), freezed=get("freezed", 0), desc=get("desc", "") or "", growing=growing, **opts,
    )


def _growing_overrides(growing: GrowingConfig, flags: dict[str, Any], res: int, gpus: int) -> GrowingConfig:
    """--batch / --batch-gpu / --glr / --dlr replace the per-resolution tables; --grow-start and --grow-kimg
    the level schedule."""
    g = dataclasses.replace(growing)
    if flags.get("batch") is not None:
        g.batch = {}
    if flags.get("batch_gpu") is not None or flags.get("batch") is not None:
        g.batch_gpu = {}
    else:  # one round per process at each resolution
        g.batch_gpu = {r: b // gpus for r, b in g.batch.items()}
    if flags.get("glr") is not None:
        g.glr = {}
    if flags.get("dlr") is not None:
        g.dlr = {}
    if flags.get("grow_start") is not None:
        g.start_res = flags["grow_start"]
    if flags.get("grow_kimg") is not None:
        g.training_kimg, g.transition_kimg = flags["grow_kimg"]
    if g.start_res < 4 or g.start_res & (g.start_res - 1) or g.start_res > res:
        raise OptionsError(f"--grow-start {g.start_res}: must be a power of two between 4 and the resolution {res}")
    if g.training_kimg < 0 or g.transition_kimg < 0:
        raise OptionsError("--grow-kimg: both lengths must be >= 0")
    return g


def diff_options(a: TrainingOptions, b: TrainingOptions) -> list[str]:
    """`key: a -> b` for every resolved setting that differs (nested keys joined with dots); networks of
    different families and growing on/off are one line each."""
    def flat(d: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(d, dict) and d:
            out: dict[str, Any] = {}
            for k, v in d.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: d}

    da, db = a.to_dict(), b.to_dict()
    lines = []
    for key in ("G", "D", "growing"):
        x, y = da[key], db[key]
        if x is None or y is None or x["family"] != y.get("family") if key != "growing" else (x is None) != (y is None):
            lines.append(f"{key}: {_short(key, x)} -> {_short(key, y)}")
            del da[key], db[key]
    fa, fb = flat(da), flat(db)
    lines += [f"{k}: {fa.get(k, '(absent)')} -> {fb.get(k, '(absent)')}" for k in sorted(set(fa) | set(fb))
              if fa.get(k, "(absent)") != fb.get(k, "(absent)")]
    return sorted(lines)


def _short(key: str, spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "none"
    if key == "growing":
        return f"from {spec['start_res']}x{spec['start_res']}, {spec['training_kimg']:g}+{spec['transition_kimg']:g} kimg per level"
    cfg, syn = spec["config"], spec["config"].get("synthesis", {})
    kind = cfg.get("style") or cfg.get("architecture") or syn.get("style") or syn.get("architecture") or ""
    return f"{spec['family']} {spec['kind']} ({kind})" if kind else f"{spec['family']} {spec['kind']}"
def _check_batch(batch: int, batch_gpu: int, gpus: int, mbstd: int | None) -> None:
    if gpus < 1:
        raise OptionsError("--gpus must be at least 1")
    if batch < 1 or batch_gpu < 1:
        raise OptionsError("--batch and --batch-gpu must be at least 1")
    if batch % gpus != 0:
        raise OptionsError(f"--batch {batch} must be a multiple of --gpus {gpus}")
    if batch % (gpus * batch_gpu) != 0:
        raise OptionsError(f"--batch {batch} must be a multiple of --gpus x --batch-gpu = {gpus * batch_gpu}")
    if mbstd is not None and batch_gpu < mbstd:
        raise OptionsError(f"--batch-gpu {batch_gpu} is smaller than the minibatch-std group size {mbstd} (--mbstd-group)")
    if mbstd is not None and batch_gpu % mbstd != 0:
        raise OptionsError(f"--batch-gpu {batch_gpu} must be a multiple of the minibatch-std group size {mbstd} (--mbstd-group)")


def _transfer_specs(nets: dict[str, NetworkSpec], info: DatasetInfo, c_dim: int, freezed: int, resume: str) -> tuple[NetworkSpec, NetworkSpec]:
    """G/D specs of the network being fine-tuned, checked against the dataset; fp16 only on CUDA."""
    G_spec, D_spec = nets["G"], nets["D"]
    g = G_spec.config
    for what, have, want in (("resolution", g.img_resolution, info.resolution), ("image channels", g.img_channels, info.channels),
                             ("label dimension (--cond)", g.c_dim, c_dim)):
        if have != want:
            raise OptionsError(f"--resume {resume}: the network's {what} is {have} but the dataset's is {want}; "
                               "fine-tuning needs them equal (convert the dataset with `stylegan dataset --resolution`, or match --cond)")
    if G_spec.family == "stylegan1":  # float32 networks; D has no frozen-layer support
        if freezed:
            raise OptionsError(f"--freezed {freezed}: not supported for StyleGAN (2019) discriminators")
        return G_spec, D_spec
    synthesis = g.synthesis
    if G_spec.family == "stylegan2":
        synthesis = dataclasses.replace(synthesis, fp16_cuda_only=True, fused_modconv_default="inference_only")
    d = dataclasses.replace(D_spec.config, fp16_cuda_only=True, freeze_layers=freezed)
    return dataclasses.replace(G_spec, config=dataclasses.replace(g, synthesis=synthesis)), dataclasses.replace(D_spec, config=d)


def network_specs(G: Any, D: Any) -> dict[str, NetworkSpec]:
    """{"G": spec, "D": spec} of loaded networks (for `resolve`'s `source_networks`)."""
    return {"G": NetworkSpec.of(G), "D": NetworkSpec.of(D)}


def with_overrides(opts: TrainingOptions, flags: dict[str, Any]) -> TrainingOptions:
    """Options of a continued run: RESUMABLE_FLAGS given on the command line replace the stored ones."""
    changes = {k: flags[k] for k in RESUMABLE_FLAGS if flags.get(k) is not None}
    if "batch" in changes and "batch_gpu" not in changes:
        changes["batch_gpu"] = min(opts.batch_gpu, changes["batch"] // changes.get("gpus", opts.gpus))
    if "gpus" in changes and "batch_gpu" not in changes:
        changes["batch_gpu"] = min(opts.batch_gpu, changes.get("batch", opts.batch) // changes["gpus"])
    new = dataclasses.replace(opts, **changes)
    _check_batch(new.batch, new.batch_gpu, new.gpus, getattr(new.D.config, "mbstd_group_size", None))
    return new
