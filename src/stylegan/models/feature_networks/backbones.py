"""The frozen feature networks of Projected GAN / StyleGAN-XL, cut into four stages as the official
`feature_networks/pretrained_builder.py` cuts them (module names are the official `pretrained.*` ones).

- EfficientNet-Lite0: `layer0` = conv_stem, bn1, act1, blocks[0], blocks[1] (24 channels, 1/4 resolution),
  `layer1` = blocks[2] (40, 1/8), `layer2` = blocks[3:5] (112, 1/16), `layer3` = blocks[5:7] (320, 1/32). The
  stem's head (conv_head, bn2, classifier) is not part of it.
- DeiT: `model` (the whole timm network, heads included) and the DPT-style reassemble stages `layer1`..`layer4`
  (Ranftl et al., "Vision Transformers for Dense Prediction", 2021) on the tokens after blocks 2, 5, 8 and 11:
  drop the class and distillation tokens, tokens -> [C, H/16, W/16] map, then 1x1 conv to 1/8, 1/4, 1/2, 1 of
  the width, followed by a 4x4 stride-4 and a 2x2 stride-2 transposed conv (layer1, layer2: 1/4 and 1/8
  resolution), nothing (layer3: 1/16) and a 3x3 stride-2 conv (layer4: 1/32).

`make_backbone(name)` is the official `_make_pretrained(name)` for the networks above, including its side effect
on batch-norm statistics (`calibrate_like_official`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .efficientnet import EfficientNetLite, efficientnet_lite0
from .vit import PATCH_SIZE, DEIT_SPECS, DistilledViT, deit_distilled

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
VIT_HOOKS = (2, 5, 8, 11)
CALIBRATION_RES = 256  # the official calc_dims() input


@dataclass(frozen=True)
class BackboneInfo:
    """What the projected discriminator needs to know about a feature network."""

    name: str
    channels: tuple[int, int, int, int]  # of the four stages
    mean: tuple[float, float, float]  # input normalisation (after mapping images to [0, 1])
    std: tuple[float, float, float]
    is_vit: bool


BACKBONES = {
    "tf_efficientnet_lite0": BackboneInfo("tf_efficientnet_lite0", (24, 40, 112, 320), INCEPTION_MEAN, INCEPTION_STD, False),
    **{name: BackboneInfo(name, (spec.embed_dim // 8, spec.embed_dim // 4, spec.embed_dim // 2, spec.embed_dim), IMAGENET_MEAN, IMAGENET_STD, True)
       for name, spec in DEIT_SPECS.items()},
}


def backbone_info(name: str) -> BackboneInfo:
    if name not in BACKBONES:
        raise ValueError(f"unsupported feature network {name!r}; supported: {', '.join(BACKBONES)}")
    return BACKBONES[name]


class EfficientNetStages(torch.nn.Module):
    """EfficientNet-Lite0 cut into the four official stages (shares the modules of `net`)."""

    def __init__(self, net: EfficientNetLite) -> None:
        super().__init__()
        blocks = list(net.blocks)
        self.layer0 = torch.nn.Sequential(net.conv_stem, net.bn1, net.act1, *blocks[0:2])
        self.layer1 = torch.nn.Sequential(*blocks[2:3])
        self.layer2 = torch.nn.Sequential(*blocks[3:5])
        self.layer3 = torch.nn.Sequential(*blocks[5:9])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out0 = self.layer0(x)
        out1 = self.layer1(out0)
        out2 = self.layer2(out1)
        return [out0, out1, out2, self.layer3(out2)]


class TokenSlice(torch.nn.Module):
    """Drops the class (and distillation) token: the official readout 'ignore'."""

    def __init__(self, start_index: int) -> None:
        super().__init__()
        self.start_index = start_index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start_index:]


class Transpose12(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).contiguous()


def _reassemble(readout: torch.nn.Module, *convs: torch.nn.Module) -> torch.nn.Sequential:
    # Indices as in the official Sequential: 0 readout, 1 transpose, 2 a 14x14 unflatten (the forward unflattens
    # to the actual token grid instead), 3.. the convolutions (state-dict names `layerN.3.weight`, ...).
    grid = 224 // PATCH_SIZE
    return torch.nn.Sequential(readout, Transpose12(), torch.nn.Unflatten(2, (grid, grid)), *convs)


class ViTStages(torch.nn.Module):
    """A DeiT with the four reassemble stages on the tokens after blocks 2, 5, 8, 11."""

    def __init__(self, net: DistilledViT) -> None:
        super().__init__()
        dim = net.spec.embed_dim
        f = [dim // 8, dim // 4, dim // 2, dim]
        readout = TokenSlice(net.num_tokens)
        nn = torch.nn
        self.model = net
        self.layer1 = _reassemble(readout, nn.Conv2d(dim, f[0], 1), nn.ConvTranspose2d(f[0], f[0], 4, stride=4))
        self.layer2 = _reassemble(readout, nn.Conv2d(dim, f[1], 1), nn.ConvTranspose2d(f[1], f[1], 2, stride=2))
        self.layer3 = _reassemble(readout, nn.Conv2d(dim, f[2], 1))
        self.layer4 = _reassemble(readout, nn.Conv2d(dim, f[3], 1), nn.Conv2d(f[3], f[3], 3, stride=2, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[2] // PATCH_SIZE, x.shape[3] // PATCH_SIZE
        out = []
        for tokens, layer in zip(self.model.forward_hooks(x, VIT_HOOKS), (self.layer1, self.layer2, self.layer3, self.layer4)):
            y = layer[1](layer[0](tokens)).unflatten(2, (h, w))
            out.append(layer[3:](y))
        return out


@torch.no_grad()
def calibrate_like_official(stages: torch.nn.Module) -> None:
    """The official builder measures the stage shapes with one forward pass of a zero 256x256 image while the
    freshly built network is in training mode, so every batch norm of the feature network moves its running
    statistics 10 % towards that image's statistics (and counts one batch). Official discriminators carry these
    statistics; this repeats the pass to get the same ones after loading pretrained weights. No effect on DeiT."""
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in stages.modules()):
        return
    mode = stages.training
    p = next(stages.parameters())
    stages.train()
    stages(torch.zeros(1, 3, CALIBRATION_RES, CALIBRATION_RES, device=p.device, dtype=p.dtype))
    stages.train(mode)


def make_backbone(name: str) -> EfficientNetStages | ViTStages:
    """The official `_make_pretrained(name)` with random weights (load them with stylegan.io.feature_weights)."""
    info = backbone_info(name)
    stages: EfficientNetStages | ViTStages
    if info.is_vit:
        stages = ViTStages(deit_distilled(name))
    else:
        stages = EfficientNetStages(efficientnet_lite0())
    calibrate_like_official(stages)
    return stages
