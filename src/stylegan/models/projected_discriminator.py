"""The projected discriminator of Projected GAN (Sauer et al. 2021) as StyleGAN-XL (Sauer et al. 2022) uses it:
frozen pretrained feature networks, fixed random cross-channel (CCM) and cross-scale (CSM) mixing, and four
multi-scale mini-discriminators per feature network with spectral norm and batch norm, projection-conditioned
on the class when class-conditional.

Module tree, tensor names and numerics follow the official `pg_modules/{discriminator,projector,blocks}.py`
(stylegan-xl 4241ff9), so official state dicts load 1:1:

    feature_networks.<backbone>.pretrained.*            the frozen feature network (see models.feature_networks)
    feature_networks.<backbone>.scratch.layer{0..3}_ccm.{weight,bias}        CCM: random 1x1 convs
    feature_networks.<backbone>.scratch.layer{3..0}_csm.out_conv.{weight,bias}   CSM: add, upsample x2, 1x1 conv
    discriminators.<backbone>.mini_discs.{i}.main.{j}.main.0.{bias,weight_orig,weight_u,weight_v}  SN 4x4 conv
    discriminators.<backbone>.mini_discs.{i}.main.{j}.main.1.{weight,bias,running_mean,running_var,num_batches_tracked}
    discriminators.<backbone>.mini_discs.{i}.main.{last}.{weight_orig,weight_u,weight_v}   unconditional output conv
    discriminators.<backbone>.mini_discs.{i}.{cls.*, embed.weight, embed_proj.{weight,bias}}   conditional head

What the code does (and the papers leave out or say differently):
- Input: images in [-1, 1]; DiffAugment (color, translation, cutout) whenever `diffaug` — in eval mode too, and
  drawn anew for every feature network; then (x + 1) / 2, the network's mean/std normalisation, and a bilinear
  resize to 224x224 (always for DeiT, for the others when `interp224`, which XL sets for datasets below 224²;
  `feature_res` changes that size, which the official code cannot).
- CCM/CSM: PyTorch's default conv init from the global RNG at construction, frozen (they live under
  `feature_networks`, which never trains); the CSM is add -> bilinear x2 (align_corners=True) -> 1x1 conv, with
  no 3x3 residual units. Stage resolutions are computed for a 256² input whatever the real input size.
- Mini-discriminators: channels from a fixed table {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64}; the
  first gets the projected features, each DownBlock is SN-conv 4x4/2 (bias) -> BatchNorm -> LeakyReLU(0.2), down to
  8x8 by the table, then an SN conv 4x4 without bias. Spectral norm is torch's (one power iteration per call in
  training mode, eps 1e-12). Conditional: 64-channel output projected onto embed_proj(embed(argmax c)) and scaled
  by 1/sqrt(64); the 1000x320 class embedding is trained with the discriminator.
- `train()` never puts the feature networks in training mode, and `requires_grad_()` never unfreezes them.

By default every op follows the official order (bit-exact with the official code on the same machine). The
`channels_last` option (off by default, and only while stylegan.ops.fast_paths are on) feeds the convolutional
feature networks channels-last input on CPU, which oneDNN runs about twice as fast. Features then differ by float32
rounding (~1e-6 relative) and logits by ~1e-5, but train-mode batch norm over small batches amplifies this:
loss gradients move by up to ~1e-3 of their scale, so it is meant for speed (CPU demos), not for parity.

The output is [N, L] logits per image: every mini-discriminator's output map flattened, the backbones in
order. The official forward returns them as a Python list of per-image rows, backbone by backbone;
`official_logit_rows` converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..nn import FullyConnectedLayer
from ..ops.diffaugment import diff_augment
from ..ops.fastpath import fast_paths_enabled, prefer_cpu_kernels
from ..ops.misc import assert_shape
from .common import check_labels
from .config import JsonConfig
from .feature_networks.backbones import BackboneInfo, backbone_info, make_backbone

DIFFAUG_POLICY = "color,translation,cutout"
FEATURE_RES = 224  # input size of the feature networks (interp224)
PROJ_RES = 256  # the official projector computes stage resolutions for this input size
MINI_DISC_CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}
MINI_DISC_END = 8
CMAP_DIM = 64
CLASS_EMBED_SHAPE = (1000, 320)  # the official in_embeddings/tf_efficientnet_lite0.pkl
SN_EPS = 1e-12


@dataclass
class ProjectedDiscriminatorConfig(JsonConfig):
    """Official `ProjectedDiscriminator(backbones, diffaug, interp224, backbone_kwargs={cout, expand, proj_type,
    num_discs, cond})`; `c_dim`, `img_resolution`, `img_channels` are the common arguments: the network checks its
    inputs against them (the official one accepts any size, since it resizes), labels enter only through argmax."""

    describe = "projected discriminator config"

    backbones: list[str] = field(default_factory=lambda: ["deit_base_distilled_patch16_224", "tf_efficientnet_lite0"])
    diffaug: bool = True
    interp224: bool = True
    cout: int = 64
    expand: bool = True
    proj_type: int = 2  # 0: features as they are, 1: + CCM, 2: + CCM + CSM
    num_discs: int = 4
    cond: bool = False
    rand_embedding: bool = False  # class embedding initialised randomly instead of the ImageNet one
    feature_res: int = FEATURE_RES  # resize target of interp224 (not official: the official code always uses 224)
    channels_last: bool = False  # CPU fast path for convolutional feature networks (not official, see the module doc)
    c_dim: int = 0
    img_resolution: int = 256
    img_channels: int = 3

    def __post_init__(self) -> None:
        for name in self.backbones:
            backbone_info(name)
        if len(set(self.backbones)) != len(self.backbones):
            raise ValueError(f"{self.describe}: backbones repeat: {self.backbones}")
        if self.proj_type not in (0, 1, 2):
            raise ValueError(f"{self.describe}: proj_type must be 0, 1 or 2, got {self.proj_type}")
        if not 1 <= self.num_discs <= 4:
            raise ValueError(f"{self.describe}: num_discs must be in 1..4, got {self.num_discs}")
        if self.feature_res < 128 or self.feature_res % 32:
            raise ValueError(f"{self.describe}: feature_res must be a multiple of 32 and at least 128 (the coarsest "
                             f"mini-discriminator needs 4x4 maps), got {self.feature_res}")
        if self.cond and self.c_dim < 1:
            raise ValueError(f"{self.describe}: a conditional discriminator (cond) needs c_dim >= 1, got {self.c_dim}")
        if self.img_channels != 3:
            raise ValueError(f"{self.describe}: the feature networks need 3-channel images, got img_channels={self.img_channels}")


class SNConv2d(torch.nn.Module):
    """Conv2d with spectral normalisation (Miyato et al. 2018) exactly as torch.nn.utils.spectral_norm computes it:
    W / sigma with sigma = u^T W v, and in training mode one power iteration updating the buffers u, v first.
    Parameters `weight_orig`, `bias`; buffers `weight_u`, `weight_v` (the official names)."""

    weight_u: torch.Tensor
    weight_v: torch.Tensor

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        conv = torch.nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias)  # PyTorch's init, same RNG use
        self.stride, self.padding = stride, padding
        self.bias = conv.bias
        self.weight_orig = conv.weight
        with torch.no_grad():
            u = F.normalize(conv.weight.new_empty(cout).normal_(0, 1), dim=0, eps=SN_EPS)
            v = F.normalize(conv.weight.new_empty(cin * kernel * kernel).normal_(0, 1), dim=0, eps=SN_EPS)
        self.register_buffer("weight_u", u)
        self.register_buffer("weight_v", v)

    def normalized_weight(self) -> torch.Tensor:
        w = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(w.t(), u), dim=0, eps=SN_EPS, out=v)
                u = F.normalize(torch.mv(w, v), dim=0, eps=SN_EPS, out=u)
                u = u.clone(memory_format=torch.contiguous_format)
                v = v.clone(memory_format=torch.contiguous_format)
        sigma = torch.dot(u, torch.mv(w, v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, self.stride, self.padding)


class DownBlock(torch.nn.Module):
    """SN conv 4x4 stride 2 (bias) -> BatchNorm -> LeakyReLU(0.2): halves the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = torch.nn.Sequential(SNConv2d(cin, cout, 4, 2, 1), torch.nn.BatchNorm2d(cout), torch.nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class MiniDiscriminator(torch.nn.Module):
    """One scale's discriminator (official SingleDisc / SingleDiscCond): DownBlocks from `start_res` to 8x8, then
    a 4x4 SN conv to one logit map, or, when conditional, to a 64-channel map projected onto the class code."""

    embed: torch.nn.Embedding  # conditional only

    def __init__(self, cin: int, start_res: int, cond: bool, rand_embedding: bool = False) -> None:
        super().__init__()
        if start_res not in MINI_DISC_CHANNELS:
            start_res = min(MINI_DISC_CHANNELS, key=lambda r: abs(r - start_res))
        channels = dict(MINI_DISC_CHANNELS)
        channels[start_res] = cin
        layers: list[torch.nn.Module] = []
        res = start_res
        while res > MINI_DISC_END:
            layers.append(DownBlock(channels[res], channels[res // 2]))
            res //= 2
        self.cond = cond
        if not cond:
            layers.append(SNConv2d(channels[MINI_DISC_END], 1, 4, bias=False))
            self.main = torch.nn.Sequential(*layers)
            return
        self.main = torch.nn.Sequential(*layers)
        self.cls = SNConv2d(channels[MINI_DISC_END], CMAP_DIM, 4, bias=False)
        num, dim = CLASS_EMBED_SHAPE
        # The official embedding is unpickled (no RNG use); rand_embedding re-initialises it with N(0, 1).
        self.embed = torch.nn.Embedding(num, dim) if rand_embedding else torch.nn.Embedding(num, dim, _weight=torch.zeros(num, dim))
        self.embed_proj = FullyConnectedLayer(dim, CMAP_DIM, activation="lrelu")

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if not self.cond:
            return self.main(x)
        assert c is not None, "a conditional mini-discriminator needs labels"
        out = self.cls(self.main(x))
        cmap = self.embed_proj(self.embed(c.argmax(1))).unsqueeze(-1).unsqueeze(-1)
        return (out * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(CMAP_DIM))


class MultiScaleD(torch.nn.Module):
    """The mini-discriminators of one feature network, on its stages 0..num_discs-1."""

    def __init__(self, channels: list[int], resolutions: list[int], num_discs: int, cond: bool, rand_embedding: bool) -> None:
        super().__init__()
        self.mini_discs = torch.nn.ModuleDict({
            str(i): MiniDiscriminator(cin, res, cond, rand_embedding)
            for i, (cin, res) in enumerate(zip(channels[:num_discs], resolutions[:num_discs]))})

    def forward(self, features: list[torch.Tensor], c: torch.Tensor | None) -> torch.Tensor:
        return torch.cat([disc(features[int(k)], c).reshape(features[int(k)].shape[0], -1)
                          for k, disc in self.mini_discs.items()], dim=1)


class CrossScaleBlock(torch.nn.Module):
    """CSM step (official FeatureFusionBlock): add the coarser output, upsample x2 bilinearly (align_corners=True),
    1x1 conv (halving the channels when `expand`)."""

    def __init__(self, channels: int, expand: bool) -> None:
        super().__init__()
        self.out_conv = torch.nn.Conv2d(channels, channels // 2 if expand else channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + skip
        return self.out_conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


class FeatureProjector(torch.nn.Module):
    """A frozen feature network and its random projections (official F_RandomProj)."""

    def __init__(self, info: BackboneInfo, cout: int, expand: bool, proj_type: int, channels_last: bool = False) -> None:
        super().__init__()
        self.info = info
        self.proj_type = proj_type
        self.channels_last = channels_last and not info.is_vit
        self.pretrained = make_backbone(info.name)
        channels = list(info.channels)
        self.resolutions = [PROJ_RES // 4, PROJ_RES // 8, PROJ_RES // 16, PROJ_RES // 32]
        if proj_type == 0:
            self.channels = channels
            return
        self.scratch = torch.nn.Module()
        ccm = [cout, cout * 2, cout * 4, cout * 8] if expand else [cout] * 4
        for i in range(4):
            setattr(self.scratch, f"layer{i}_ccm", torch.nn.Conv2d(channels[i], ccm[i], 1))
        self.channels = ccm
        if proj_type == 1:
            return
        for i in (3, 2, 1):
            setattr(self.scratch, f"layer{i}_csm", CrossScaleBlock(ccm[i], expand))
        self.scratch.layer0_csm = CrossScaleBlock(ccm[0], False)  # the finest step never halves
        self.channels = [cout, cout, cout * 2, cout * 4] if expand else [cout] * 4
        self.resolutions = [r * 2 for r in self.resolutions]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.channels_last and x.dtype == torch.float32 and fast_paths_enabled() and prefer_cpu_kernels(x):
            out = [o.contiguous() for o in self.pretrained(x.contiguous(memory_format=torch.channels_last))]
        else:
            out = self.pretrained(x)
        if self.proj_type == 0:
            return out
        s = self.scratch.get_submodule
        out = [s(f"layer{i}_ccm")(o) for i, o in enumerate(out)]
        if self.proj_type == 1:
            return out
        out3 = s("layer3_csm")(out[3])
        out2 = s("layer2_csm")(out3, out[2])
        out1 = s("layer1_csm")(out2, out[1])
        return [s("layer0_csm")(out1, out[0]), out1, out2, out3]


class ProjectedDiscriminator(torch.nn.Module):
    """D(img, c) -> [N, L] logits for images in [-1, 1] (see the module docstring)."""

    def __init__(self, cfg: ProjectedDiscriminatorConfig, class_embedding: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        features, discs = [], []
        for name in cfg.backbones:  # built in the official order (the random projections come from the global RNG)
            feat = FeatureProjector(backbone_info(name), cfg.cout, cfg.expand, cfg.proj_type, cfg.channels_last)
            disc = MultiScaleD(feat.channels, feat.resolutions, cfg.num_discs, cfg.cond, cfg.rand_embedding)
            features.append((name, feat))
            discs.append((name, disc))
        self.feature_networks = torch.nn.ModuleDict(dict(features))
        self.discriminators = torch.nn.ModuleDict(dict(discs))
        if class_embedding is not None:
            self.set_class_embedding(class_embedding)
        self.requires_grad_(True)

    @torch.no_grad()
    def set_class_embedding(self, weight: torch.Tensor) -> None:
        """Copy a [1000, 320] class embedding (the official ImageNet one) into every conditional mini-discriminator."""
        if tuple(weight.shape) != CLASS_EMBED_SHAPE:
            raise ValueError(f"class embedding must be {list(CLASS_EMBED_SHAPE)}, got {list(weight.shape)}")
        if not self.config.cond:
            raise ValueError("an unconditional projected discriminator has no class embedding")
        for mini in self.discriminators.modules():
            if isinstance(mini, MiniDiscriminator):
                mini.embed.weight.copy_(weight)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.feature_networks.train(False)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> ProjectedDiscriminator:
        super().requires_grad_(requires_grad)
        self.feature_networks.requires_grad_(False)
        return self

    def projector(self, name: str) -> FeatureProjector:
        """The feature network `name` with its random projections."""
        projector = self.feature_networks[name]
        assert isinstance(projector, FeatureProjector)
        return projector

    def feature_input(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Images in [-1, 1] (already augmented) -> the input of feature network `name`."""
        info = self.projector(name).info
        x = x.add(1).div(2)
        mean = torch.as_tensor(info.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.as_tensor(info.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        x = x.sub(mean).div(std)
        if self.config.interp224 or info.is_vit:
            x = F.interpolate(x, self.config.feature_res, mode="bilinear", align_corners=False)
        return x

    def forward(self, img: torch.Tensor, c: torch.Tensor | None, per_backbone: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Logits [N, L] (or, with `per_backbone`, a list of [N, L_b] per feature network)."""
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "D input image")
        if self.config.cond:
            assert_shape(check_labels(c, self.c_dim, "discriminator"), [img.shape[0], self.c_dim], "D labels")
        logits = []
        for name, feat in self.feature_networks.items():
            x = diff_augment(img, DIFFAUG_POLICY) if self.config.diffaug else img
            logits.append(self.discriminators[name](feat(self.feature_input(x, name)), c))
        return logits if per_backbone else torch.cat(logits, dim=1)


def official_logit_rows(per_backbone: list[torch.Tensor]) -> list[torch.Tensor]:
    """The official forward's return value: per feature network, one 1-D row of logits per image."""
    return [row for logits in per_backbone for row in logits.unbind(0)]
