"""What the generator families share: the `Generator` protocol and the mapping -> synthesis base that implements
it, the W average and the truncation trick of every mapping network, the precision policy and input checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch

from .config import JsonConfig


@runtime_checkable
class Generator(Protocol):
    """What every generator offers, with NVIDIA's names: `G(z, c, truncation_psi, truncation_cutoff, update_emas,
    **synthesis_kwargs)` = `G.synthesis(G.mapping(z, c, ...), ...)`, the sizes `z_dim`, `c_dim`, `w_dim`,
    `img_resolution`, `img_channels`, `num_ws`, and its `config` (what `models.registry` rebuilds it from)."""

    @property
    def config(self) -> Any: ...
    @property
    def z_dim(self) -> int: ...
    @property
    def c_dim(self) -> int: ...
    @property
    def w_dim(self) -> int: ...
    @property
    def img_resolution(self) -> int: ...
    @property
    def img_channels(self) -> int: ...
    @property
    def num_ws(self) -> int: ...
    @property
    def mapping(self) -> torch.nn.Module: ...
    @property
    def synthesis(self) -> torch.nn.Module: ...
    @property
    def training(self) -> bool: ...

    def __call__(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                 update_emas: bool = False, **synthesis_kwargs: Any) -> torch.Tensor: ...
    def eval(self) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...
    def requires_grad_(self, requires_grad: bool = True) -> Any: ...
    def to(self, *args: Any, **kwargs: Any) -> Any: ...
    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
    def named_parameters(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, torch.nn.Parameter]]: ...
    def buffers(self, recurse: bool = True) -> Iterator[torch.Tensor]: ...
    def named_buffers(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, torch.Tensor]]: ...
    def modules(self) -> Iterator[torch.nn.Module]: ...
    def named_modules(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, torch.nn.Module]]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


@dataclass
class GeneratorConfigBase(JsonConfig):
    """The sizes every generator config starts with (NVIDIA's constructor arguments); a family's config adds its
    `mapping` and `synthesis` configs."""

    z_dim: int = 512  # input latent (Z) dimensionality
    c_dim: int = 0  # conditioning label (C) dimensionality, 0 = no labels
    w_dim: int = 512  # intermediate latent (W) dimensionality
    img_resolution: int = 1024  # output resolution
    img_channels: int = 3  # number of output color channels


class MappingSynthesisGenerator(torch.nn.Module):
    """G(z, c) = synthesis(mapping(z, c)): the structure, attributes and calling convention of every generator family.

    A family names its synthesis network (`synthesis_class(w_dim, img_resolution, img_channels, cfg.synthesis)`,
    which defines `num_ws`) and its mapping network (`mapping_class(z_dim, c_dim, w_dim, num_ws, cfg.mapping)`, or
    overrides `make_mapping`).
    """

    synthesis_class: ClassVar[type[torch.nn.Module]]
    mapping_class: ClassVar[type[torch.nn.Module]]
    synthesis: Any  # the family's synthesis network; its num_ws is the number of ws it takes

    def __init__(self, cfg: Any) -> None:
        super().__init__()
        self.config = cfg
        self.z_dim: int = cfg.z_dim
        self.c_dim: int = cfg.c_dim
        self.w_dim: int = cfg.w_dim
        self.img_resolution: int = cfg.img_resolution
        self.img_channels: int = cfg.img_channels
        self.synthesis = self.synthesis_class(cfg.w_dim, cfg.img_resolution, cfg.img_channels, cfg.synthesis)
        self.num_ws: int = self.synthesis.num_ws
        self.mapping = self.make_mapping(cfg)

    def make_mapping(self, cfg: Any) -> torch.nn.Module:
        return self.mapping_class(cfg.z_dim, cfg.c_dim, cfg.w_dim, self.num_ws, cfg.mapping)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False, **synthesis_kwargs: Any) -> torch.Tensor:
        """`synthesis_kwargs`: `noise_mode`, `force_fp32` and what the family's synthesis network takes besides."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


# ----------------------------------------------------------------------------- W average and truncation


class MappingNetworkBase(torch.nn.Module):
    """What every mapping network keeps, with NVIDIA's names: its sizes (num_ws None: a mapping that outputs one w, as
    StyleGAN2's discriminator uses), its layer count and the decay of its W average (None: no W average)."""

    w_avg: torch.Tensor

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int, w_avg_beta: float | None) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"



def update_w_avg(w_avg: torch.Tensor, w: torch.Tensor, beta: float) -> None:
    """Track the average of W in place: w_avg <- lerp(mean of w [N, w_dim] over the batch, w_avg, beta).
    For a class-wise average, pass the class's row of it (a view) and the sample's w [1, w_dim]."""
    w_avg.copy_(w.detach().mean(dim=0).lerp(w_avg, beta))


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick, w' = w_avg + psi (w - w_avg) (StyleGAN §3.1 / appendix B), for the first `cutoff` ws of
    ws [N, num_ws, w_dim] (all when None; a [N, w_dim] w is truncated whole). `w_avg` is [w_dim], or [N, w_dim] with
    one average per sample (a class-wise average: the caller selects each sample's row)."""
    if psi == 1:
        return ws
    if w_avg.ndim == 2 and ws.ndim == 3:
        w_avg = w_avg.unsqueeze(1)
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    return torch.cat([w_avg.lerp(ws[:, :cutoff], psi), ws[:, cutoff:]], dim=1)


# ----------------------------------------------------------------------------- checks and precision


def check_resolution(res: int) -> int:
    """log2(res) of a power-of-two resolution >= 4; ValueError otherwise."""
    if res < 4 or res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
    return int(np.log2(res))


def check_labels(c: torch.Tensor | None, c_dim: int, what: str = "network") -> torch.Tensor:
    """The labels `c` of a conditional network ([N, c_dim]); ValueError naming the expected shape otherwise."""
    if c is None or c.ndim != 2 or c.shape[1] != c_dim:
        got = "none" if c is None else list(c.shape)
        raise ValueError(f"this {what} is conditional: c must have shape [N, {c_dim}], got {got}")
    return c


def block_dtype(use_fp16: bool, force_fp32: bool, fp16_cuda_only: bool, device: torch.device) -> torch.dtype:
    """Precision policy: fp16 only for fp16 blocks, never when forced off, and only on CUDA unless the
    network comes from code that ran fp16 everywhere."""
    if not use_fp16 or force_fp32 or (fp16_cuda_only and device.type != "cuda"):
        return torch.float32
    return torch.float16
