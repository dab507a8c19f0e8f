"""Pretrained image classifiers used as frozen feature networks (StyleGAN-XL's projected discriminator, its
classifier guidance), written in plain PyTorch with timm's module trees and tensor names."""

from .backbones import BACKBONES, BackboneInfo, EfficientNetStages, ViTStages, backbone_info, calibrate_like_official, make_backbone
from .efficientnet import EfficientNetLite, efficientnet_lite0, tf_same_pad
from .vit import DEIT_SPECS, DistilledViT, deit_distilled

__all__ = [
    "BACKBONES",
    "BackboneInfo",
    "DEIT_SPECS",
    "DistilledViT",
    "EfficientNetLite",
    "EfficientNetStages",
    "ViTStages",
    "backbone_info",
    "calibrate_like_official",
    "deit_distilled",
    "efficientnet_lite0",
    "make_backbone",
    "tf_same_pad",
]
