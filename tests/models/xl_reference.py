"""What the StyleGAN-XL discriminator reference (fixtures/xl_d_reference.npz) was made from, shared by the tests
and by make_xl_reference.py, which ran the official code on it: the configurations, a name-keyed weight recipe,
the inputs, a small stand-in generator for the loss phases, and the summaries that are stored."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FIXTURE = Path(__file__).parent / "fixtures" / "xl_d_reference.npz"

# name -> (backbones, cond, backbone_kwargs overrides, interp224, batch, resolution)
CONFIGS = {
    "xl_base_cond": (["deit_base_distilled_patch16_224", "tf_efficientnet_lite0"], True, {}, True, 2, 16),
    "tiny_lite0_cond": (["deit_tiny_distilled_patch16_224", "tf_efficientnet_lite0"], True, {}, True, 4, 16),
    "lite0_uncond_ccm": (["tf_efficientnet_lite0"], False, {"proj_type": 1, "expand": False, "num_discs": 3}, False, 3, 128),
}
C_DIM = 10
EVAL_SEED, TRAIN_SEED, LOSS_SEED = 11, 12, 13
V_HEAD = 32  # stored leading values of each spectral-norm v vector


def official_kwargs(name: str) -> dict:
    backbones, cond, overrides, interp224, _, res = CONFIGS[name]
    bk = {**dict(cout=64, expand=True, proj_type=2, num_discs=4, cond=int(cond)), **overrides}
    return dict(backbones=backbones, diffaug=True, interp224=interp224, backbone_kwargs=bk,
                c_dim=C_DIM if cond else 0, img_resolution=res, img_channels=3)


def _generator(key: str) -> torch.Generator:
    return torch.Generator().manual_seed(int(hashlib.sha256(key.encode()).hexdigest()[:15], 16))


def recipe_value(key: str, like: torch.Tensor) -> torch.Tensor:
    """A deterministic value for the tensor `key` (shape and dtype of `like`), from its name alone."""
    g, shape = _generator(key), like.shape
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.tensor(7, dtype=like.dtype)
    if leaf == "running_var":
        return 0.5 + torch.rand(shape, generator=g)
    if leaf in ("weight_u", "weight_v"):
        return F.normalize(torch.randn(shape, generator=g), dim=0)
    if len(shape) == 1:  # biases, norm scales, running means
        base = 1.0 if leaf == "weight" else 0.0
        return base + 0.1 * torch.randn(shape, generator=g)
    if key.endswith(("embed.weight", "embed_proj.weight")):
        return torch.randn(shape, generator=g)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return torch.randn(shape, generator=g) / np.sqrt(max(fan_in, 1))


def recipe_state(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor from `recipe_value`, except that spectral-norm vectors start from their name-keyed value and
    take three power iterations on the recipe weight (so sigma is near the true spectral norm, as after training)."""
    state = {k: recipe_value(prefix + k, v) for k, v in module.state_dict().items()}
    for k in [k for k in state if k.endswith("weight_u")]:
        base = k[: -len("weight_u")]
        w = state[base + "weight_orig"].reshape(state[base + "weight_orig"].shape[0], -1)
        u = state[k]
        for _ in range(3):
            v = F.normalize(w.t() @ u, dim=0)
            u = F.normalize(w @ v, dim=0)
        state[k], state[base + "weight_v"] = u, v
    return state


def our_official_d(name: str) -> torch.nn.Module:
    """Our discriminator built from the official constructor arguments of `name`, with the recipe weights."""
    from stylegan.io.xl_discriminator import projected_discriminator_from_official

    D = projected_discriminator_from_official(official_kwargs(name))
    D.load_state_dict(recipe_state(D), strict=True)
    return D


def inputs(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    _, _, _, _, batch, res = CONFIGS[name]
    g = torch.Generator().manual_seed(1234)
    img = torch.rand(batch, 3, res, res, generator=g) * 2 - 1
    c = F.one_hot(torch.arange(batch) * 3 % C_DIM, C_DIM).float()
    return img, c


def buffer_summary(D: torch.nn.Module) -> dict[str, np.ndarray]:
    """The discriminators' buffers (SN u fully, v by its sum and leading values; BN statistics fully)."""
    out = {}
    for k, v in D.state_dict().items():
        if not k.startswith("discriminators.") or not k.endswith(("weight_u", "weight_v", "running_mean", "running_var", "num_batches_tracked")):
            continue
        if k.endswith("weight_v"):
            out[f"{k}:sum"] = v.sum().numpy()
            out[f"{k}:head"] = v[:V_HEAD].numpy()
        else:
            out[k] = v.numpy()
    return out


class ToyMapping(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc0 = torch.nn.Linear(8 + C_DIM, 16)
        self.num_ws = 3
        self.register_buffer("w_avg", torch.zeros(16))

    def forward(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        w = torch.tanh(self.fc0(torch.cat([z, c], 1)))
        if update_emas:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, 0.9))
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)


class ToySynthesis(torch.nn.Module):
    """Three "layers" with official-style names; L0 is a stem layer, L1 a head layer."""

    def __init__(self, res: int) -> None:
        super().__init__()
        self.res = res
        self.input = torch.nn.Linear(16, 3 * res * res)
        self.L0_16_3 = torch.nn.Linear(16, 3 * res * res)
        self.L1_16_3 = torch.nn.Linear(16, 3 * res * res)
        self.layer_names = ["L0_16_3", "L1_16_3"]

    def forward(self, ws: torch.Tensor, update_emas: bool = False) -> torch.Tensor:
        x = self.input(ws[:, 0]) + self.L0_16_3(ws[:, 1]) * self.L1_16_3(ws[:, 2])
        return torch.tanh(x).view(-1, 3, self.res, self.res)


class ToyG(torch.nn.Module):
    def __init__(self, res: int = 16) -> None:
        super().__init__()
        self.mapping = ToyMapping()
        self.synthesis = ToySynthesis(res)
        self.head_layer_names = ["L1_16_3"]


def toy_g() -> ToyG:
    G = ToyG()
    G.load_state_dict(recipe_state(G, "G."))
    return G


def loss_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(77)
    z = torch.randn(4, 8, generator=g)
    real = torch.rand(4, 3, 16, 16, generator=g) * 2 - 1
    c = F.one_hot(torch.tensor([1, 5, 7, 2]), C_DIM).float()
    return z, c, real


# (case name, phase, cur_nimg, cls_weight, train_head_only)
LOSS_CASES = (
    ("dmain_blur", "Dmain", 0, 0.0, False),
    ("gmain", "Gmain", 100_000, 0.0, False),
    ("gmain_guided_head", "Gmain", 400_000, 0.5, True),
    ("greg", "Greg", 1_000_000, 0.0, False),
)
PL_MEAN_START = 0.3


def grad_summary(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {n: np.array([float(p.grad.sum()), float(p.grad.square().sum().sqrt())])
            for n, p in module.named_parameters() if p.grad is not None}
