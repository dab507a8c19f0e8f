"""Training options: a `--cfg` preset (`training.presets`) resolved against a dataset and the flags into one
`TrainingOptions` (what `training_options.json` records and `--dry-run` prints)."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..data.dataset import DatasetInfo
from ..models.config import JsonConfig
from ..models.registry import NetworkSpec
from .augment import AUGMENT_PRESETS
from .growing import GrowingConfig
from .loss import LossConfig
from .loss_xl import XLLossConfig
from .presets import PRESETS, AugMode, LossKind, NetworkArgs, PerBatch, preset
from .presets import network_specs as preset_network_specs


class OptionsError(ValueError):
    """Training options that cannot work together; the message names the setting."""


AUG_MODES: tuple[str, ...] = typing.get_args(AugMode)
# Flags that may change when a run continues (`--resume RUN_DIR`); everything else is fixed by the run.
RESUMABLE_FLAGS = ("kimg", "tick", "snap", "batch", "batch_gpu", "gpus", "workers", "metrics", "on_nan", "feature_weights")
NanPolicy = Literal["rollback", "stop"]  # --on-nan: what a tick with non-finite losses or weights does
NAN_POLICIES: tuple[str, ...] = typing.get_args(NanPolicy)


@dataclass
class GrownFrom(JsonConfig):
    """Where a StyleGAN-XL super-resolution stage came from (`stylegan train --grow-from RUN --to RES`)."""

    run: str  # the previous stage's run folder
    snapshot: str  # the snapshot whose G_ema was grown
    kimg: float  # its training length
    sha256: str  # of the snapshot file
    up_factor: int = 2  # resolution multiplier of the stage
    head_layers: int = 7  # new layers before ToRGB


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
    loss_kind: LossKind = "stylegan2"  # which loss trains: StyleGAN2's, or the projected GAN loss of StyleGAN-XL (`xl_loss`)
    xl_loss: XLLossConfig | None = None  # settings of the projected GAN loss (loss_kind 'projected')
    feature_weights: str | None = None  # projected D: weights file/folder of the frozen feature networks (None: the cache)
    random_backbone: bool = False  # projected D: feature networks left random (xl-demo without weights; see docs/stylegan-xl.md)
    grown_from: GrownFrom | None = None  # StyleGAN-XL stage: the run and snapshot whose generator it grew
    growing: GrowingConfig | None = None  # progressive growing (StyleGAN 2019, StyleGAN2 configs A-D)
    resume: str | None = None  # network file fine-tuned from (transfer learning)
    freezed: int = 0  # frozen layers of D when fine-tuning
    keep_snapshots: int = 5  # snapshots kept in the run folder (the newest)
    on_nan: NanPolicy = "rollback"  # a tick with non-finite losses or weights: 'rollback' to the newest snapshot, or 'stop'
    desc: str = ""  # text added to the run folder's name
    data_spec: str | None = None  # --data as given when it names a builtin: dataset (a later XL stage converts it at its resolution)


def describe(opts: TrainingOptions) -> list[str]:
    """A short human summary of the resolved options."""
    syn = opts.G.config.synthesis
    history = getattr(opts.G.config, "history", None)  # StyleGAN-XL: channels are the stem's
    if history is not None:
        syn = history.stem
    style = getattr(syn, "style", None)  # StyleGAN (2019): 'adain' or 'demod'
    ds = opts.dataset
    gr = opts.growing
    xl = opts.xl_loss
    loss = (f"loss:      R1 gamma {opts.loss.r1_gamma:g}, path length weight {opts.loss.pl_weight:g}, style mixing {opts.loss.style_mixing_prob:g}, "
            f"D blur sigma {opts.loss.blur_init_sigma:g} over {opts.loss.blur_fade_kimg:g} kimg")
    if xl is not None:
        backbones = getattr(opts.D.config, "backbones", [])
        loss = (f"loss:      projected GAN hinge (no R1) on {' + '.join(backbones)}"
                f"{' (random, not pretrained)' if opts.random_backbone else ''}, path length weight {xl.pl_weight:g} from "
                f"{xl.pl_start_kimg:g} kimg, D blur sigma {xl.blur_init_sigma:g} over {xl.blur_fade_kimg:g} kimg, classifier guidance "
                f"{xl.cls_weight:g}{', head layers only' if xl.train_head_only else ''}")
    lines = [
        f"data:      {opts.data} ({ds.num_images:,} images{' x2 mirrored' if opts.mirror else ''}, {ds.resolution}x{ds.resolution}, "
        f"{ds.channels} channel(s), {'conditional on ' + str(ds.label_dim) + ' labels' if opts.cond else 'unconditional'})",
        f"config:    {opts.cfg} ({opts.G.family} G{' ' + style if style else ''}, {opts.D.family} D, "
        f"channel base {syn.channel_base}, max {syn.channel_max}, mapping depth {opts.G.config.mapping.num_layers})",
        f"batch:     {opts.batch} total, {opts.batch_gpu} per GPU per round, {opts.gpus} process(es)",
        f"optimiser: Adam G lr {opts.glr:g}, D lr {opts.dlr:g}, betas {opts.betas}, lazy reg G every {opts.G_reg_interval}, "
        f"D every {opts.D_reg_interval}",
        loss,
        f"G_ema:     half-life {opts.ema_kimg:g} kimg, ramp-up {opts.ema_rampup}",
        f"augment:   {opts.aug}" + (f" ({opts.augpipe}, p {opts.augment_p:g}"
                                   + (f", target {opts.ada_target:g}, ada_kimg {opts.ada_kimg:g})" if opts.aug == "ada" else ")")
                                   if opts.aug != "noaug" else ""),
        f"length:    {opts.kimg:g} kimg, tick {opts.tick:g} kimg, snapshot every {opts.snap} ticks, metrics {','.join(opts.metrics) or 'none'}",
    ] + ([f"growing:   from {gr.start_res}x{gr.start_res}, {gr.training_kimg:g} kimg per level + {gr.transition_kimg:g} kimg fade; "
          f"batch {gr.batch or 'fixed'}, G lr {gr.glr or 'fixed'}, D lr {gr.dlr or 'fixed'}"] if gr is not None else [])
    if opts.grown_from is not None:
        g = opts.grown_from
        lines.append(f"grown:     x{g.up_factor} with {g.head_layers} head layers from {g.run}/{g.snapshot} ({g.kimg:g} kimg)")
    return lines


def resolve(flags: dict[str, Any], info: DatasetInfo, source_networks: dict[str, NetworkSpec] | None = None) -> TrainingOptions:
    """Turn CLI flags (None = not given) and the dataset into options: the `--cfg` row, every flag given overriding it.

    `source_networks` ({"G": spec, "D": spec} read from a `--resume` network file) fixes the architecture:
    the run fine-tunes that network, so the preset's network settings do not apply.
    """
    cfg = flags.get("cfg") or "auto"
    if cfg not in PRESETS:
        raise OptionsError(f"--cfg {cfg}: unknown; choose from {', '.join(PRESETS)}")

    def get(name: str, default: Any) -> Any:
        return default if flags.get(name) is None else flags[name]

    gpus = get("gpus", 1)
    res, channels = info.resolution, info.channels
    cond = bool(get("cond", False))
    if cond and not info.has_labels:
        raise OptionsError(f"--cond: {info.path} has no labels (no dataset.json with a 'labels' list)")
    c_dim = info.label_dim if cond else 0
    p = preset(cfg, res, gpus)
    if p.loss == "projected" and channels != 3:
        raise OptionsError(f"--cfg {p.name}: the feature networks of the projected discriminator need RGB images; {info.path} has "
                           f"{channels} channel(s) (convert it with `stylegan dataset --channels 3`)")
    assert p.batch is not None and p.channel_base is not None and p.glr is not None and p.dlr is not None

    batch = get("batch", p.batch)
    table_batch_gpu = p.ref_gpus is not None and flags.get("batch") is None  # the stylegan2-ada row's per-GPU batch
    batch_gpu = get("batch_gpu", p.batch // p.ref_gpus if table_batch_gpu else batch // gpus)  # type: ignore[operator]
    growing = p.growing if flags.get("resume") is None else None  # fine-tuning a grown network
    if growing is not None:
        growing = _growing_overrides(growing, flags, res, gpus)
    reg_intervals: dict[str, int | None] = {name: getattr(p, name) if flags.get(name) is None else flags[name] or None  # 0 = every minibatch
                                            for name in ("G_reg_interval", "D_reg_interval")}
    mbstd = get("mbstd_group", p.mbstd)
    fp16_res, clamp = (4, 256) if p.fp16 and not get("fp32", False) else (0, None)
    gamma = get("gamma", p.gamma)
    if gamma is None:  # StyleGAN2-ADA's heuristic where NVlabs/stylegan3 requires --gamma
        gamma = 0.0002 * res**2 / batch
    loss = LossConfig(r1_gamma=float(gamma), style_mixing_prob=p.style_mixing_prob, pl_weight=p.pl_weight,
                      blur_init_sigma=p.blur_init_sigma, blur_fade_kimg=_kimg(p.blur_fade_kimg, batch))
    ema_kimg = _kimg(p.ema_kimg, batch)

    _check_batch(batch, batch_gpu, gpus, mbstd)
    if growing is not None:
        for r, b in growing.batch.items():
            _check_batch(b, growing.batch_gpu.get(r, batch_gpu), gpus, mbstd)
    cbase = get("cbase", p.channel_base)
    if source_networks is None and cbase < res:
        raise OptionsError(f"--cbase {cbase}: must be at least the resolution {res} (the {res}x{res} layers get "
                           f"channel base / {res} channels)")
    if source_networks is not None:
        G_spec, D_spec = _transfer_specs(source_networks, info, c_dim, get("freezed", 0), flags.get("resume"))
    else:
        G_spec, D_spec = preset_network_specs(p, NetworkArgs(
            resolution=res, channels=channels, c_dim=c_dim, z_dim=p.z_dim, w_dim=p.w_dim or p.z_dim, channel_base=cbase,
            channel_max=get("cmax", p.channel_max), map_depth=get("map_depth", p.map_depth), mbstd=mbstd, fp16_res=fp16_res,
            conv_clamp=clamp, freezed=get("freezed", 0), batch=batch))

    aug = get("aug", p.aug)
    if aug not in AUG_MODES:
        raise OptionsError(f"--aug {aug}: choose from {', '.join(AUG_MODES)}")
    xl_loss = _projected_loss(p, flags, aug, batch) if p.loss == "projected" else None
    augpipe = get("augpipe", "bgc")
    if augpipe not in AUGMENT_PRESETS:
        raise OptionsError(f"--augpipe {augpipe}: choose from {', '.join(AUGMENT_PRESETS)}")
    if flags.get("p") is not None and aug != "fixed":
        raise OptionsError("--p applies only with --aug fixed")
    resume = flags.get("resume")
    ada_kimg, ema_rampup = 500, p.ema_rampup
    if resume is not None:  # NVlabs: a fine-tuning run adapts faster and starts without ramp-ups
        ada_kimg, ema_rampup = 100, None
        loss.blur_init_sigma = 0.0
    if flags.get("ema_kimg") is not None:
        if flags["ema_kimg"] <= 0:
            raise OptionsError(f"--ema-kimg {flags['ema_kimg']}: must be > 0")
        ema_kimg = float(flags["ema_kimg"])
    tick, snap = get("tick", p.tick), get("snap", p.snap)
    if tick <= 0 or snap < 1:
        raise OptionsError("--tick must be > 0 and --snap >= 1")
    return TrainingOptions(
        data=str(flags["data"]), dataset=info, cfg=cfg, G=G_spec, D=D_spec, gpus=gpus, batch=batch, batch_gpu=batch_gpu,
        kimg=get("kimg", p.kimg), tick=tick, snap=snap, seed=get("seed", 0), workers=get("workers", default_workers(p.workers)),
        cond=cond, mirror=bool(get("mirror", False)), aug=aug, augpipe=augpipe,
        augment_p=float(get("p", 0.2)) if aug == "fixed" else 0.0, ada_target=float(get("target", 0.6)), ada_kimg=ada_kimg,
        metrics=list(get("metrics", [])), glr=float(get("glr", p.glr)), dlr=float(get("dlr", p.dlr)), betas=p.betas, eps=p.eps,
        ema_kimg=ema_kimg, ema_rampup=ema_rampup, loss=loss, growing=growing, resume=None if resume is None else str(resume),
        freezed=get("freezed", 0), desc=get("desc", "") or "", G_reg_interval=reg_intervals["G_reg_interval"],
        D_reg_interval=reg_intervals["D_reg_interval"], on_nan=get("on_nan", "rollback"), loss_kind=p.loss, xl_loss=xl_loss,
        feature_weights=None if flags.get("feature_weights") is None else str(flags["feature_weights"]), data_spec=flags.get("data_spec"),
    )


def _projected_loss(p: Any, flags: dict[str, Any], aug: str, batch: int) -> XLLossConfig:
    """The projected GAN loss of an XL row, refusing the flags that do not apply to it."""
    if aug != "noaug":
        raise OptionsError(f"--aug {aug}: --cfg {p.name} augments inside its projected discriminator (DiffAugment); use --aug noaug")
    if flags.get("gamma"):
        raise OptionsError(f"--gamma {flags['gamma']}: --cfg {p.name} trains with the hinge loss and no R1 regularisation")
    if flags.get("resume") is not None:
        raise OptionsError(f"--resume {flags['resume']}: --cfg {p.name} does not fine-tune network files; continue a run with "
                           "--resume RUN_DIR, or start the next stage with --grow-from RUN_DIR --to RES")
    return XLLossConfig(blur_init_sigma=p.blur_init_sigma, blur_fade_kimg=_kimg(p.blur_fade_kimg, batch), pl_weight=p.pl_weight,
                        style_mixing_prob=p.style_mixing_prob)


def default_workers(preset: int) -> int:
    """DataLoader workers when --workers is not given: the preset's, at most the CPU cores this process may use less
    one (the training process needs one; more workers than cores only competes with it, and PyTorch warns)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(preset, cores - 1))


def _kimg(value: float | PerBatch | None, batch: int) -> float:
    """A preset's length in kimg at the resolved minibatch."""
    assert value is not None
    return value.at(batch) if isinstance(value, PerBatch) else value


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


def _transfer_specs(nets: dict[str, NetworkSpec], info: DatasetInfo, c_dim: int, freezed: int, resume: Any) -> tuple[NetworkSpec, NetworkSpec]:
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
