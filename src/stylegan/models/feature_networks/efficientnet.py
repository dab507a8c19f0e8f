"""EfficientNet-Lite0 as timm 0.4.12 builds `tf_efficientnet_lite0` (the TensorFlow "lite" port), in plain PyTorch.

Tan & Le, "EfficientNet" (2019), lite variant: no squeeze-excitation, ReLU6, stem and head fixed at 32 and 1280
channels. The TensorFlow port keeps TensorFlow's conventions: batch norm eps 1e-3 and "SAME" padding, which for
a stride-2 convolution pads asymmetrically (the extra row/column goes to the bottom/right, `tf_same_pad`).

Module tree and tensor names are timm's, so timm state dicts load as they are:

    conv_stem, bn1                      3x3 stride-2 conv (no bias) + BN
    blocks.{s}.{j}.conv_dw/bn1/conv_pw/bn2          stage 0: depthwise-separable block
    blocks.{s}.{j}.conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3   stages 1-6: inverted residual blocks
    conv_head, bn2                      1x1 conv to 1280 channels + BN
    classifier                          Linear(1280, 1000)

Construction consumes torch's global RNG exactly as timm's does (PyTorch's default init of every conv and the
classifier in construction order, then timm's `_init_weight_goog` pass over `named_modules()`), so modules built
after it from the same seed (StyleGAN-XL's random projections) get the same values as in the official code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BN_EPS = 1e-3  # TensorFlow's default, kept by timm's tf_* ports
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

# (block, repeats, kernel, stride, expansion, out channels): timm's arch_def of efficientnet-lite0
# ('ds_r1_k3_s1_e1_c16', 'ir_r2_k3_s2_e6_c24', ...); only the first block of a stage has the stride.
LITE0_STAGES = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)


def tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: total max((ceil(size/stride) - 1) stride + kernel - size, 0),
    with the odd pixel after the image (bottom/right)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(torch.nn.Conv2d):
    """nn.Conv2d whose input is padded TensorFlow-"SAME"-style for the size it gets (timm's Conv2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = tf_same_pad(x.shape[-2], kh, sh)
        left, right = tf_same_pad(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def tf_conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> torch.nn.Conv2d:
    """Conv without bias and with "SAME" padding, as timm's create_conv2d(padding='same'): a plain symmetric
    nn.Conv2d where SAME padding is static (stride 1), else Conv2dSame."""
    if stride == 1:
        return torch.nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False)
    return Conv2dSame(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)


def _bn(channels: int) -> torch.nn.BatchNorm2d:
    return torch.nn.BatchNorm2d(channels, eps=BN_EPS)


class DepthwiseSeparableConv(torch.nn.Module):
    """depthwise kxk conv, BN, ReLU6, 1x1 conv, BN (no activation); residual when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.has_residual = stride == 1 and cin == cout
        self.conv_dw = tf_conv(cin, cin, kernel, stride, groups=cin)
        self.bn1 = _bn(cin)
        self.act1 = torch.nn.ReLU6(inplace=True)
        self.conv_pw = tf_conv(cin, cout, 1)
        self.bn2 = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.act1(self.bn1(self.conv_dw(x)))))
        return y + x if self.has_residual else y


class InvertedResidual(torch.nn.Module):
    """1x1 expansion conv, BN, ReLU6, depthwise kxk conv, BN, ReLU6, 1x1 projection conv, BN; residual when
    stride 1 and the channels are kept (MobileNetV2's MBConv without squeeze-excitation)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.has_residual = stride == 1 and cin == cout
        self.conv_pw = tf_conv(cin, mid, 1)
        self.bn1 = _bn(mid)
        self.act1 = torch.nn.ReLU6(inplace=True)
        self.conv_dw = tf_conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.act2 = torch.nn.ReLU6(inplace=True)
        self.conv_pwl = tf_conv(mid, cout, 1)
        self.bn3 = _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv_pw(x)))
        y = self.act2(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.has_residual else y


def _init_weight_goog(module: torch.nn.Module) -> None:
    """timm's TensorFlow-style init: conv N(0, 2 / fan_out) with fan_out = k*k*cout/groups, BN (1, 0),
    linear U(+-1/sqrt(cout)); biases 0."""
    if isinstance(module, torch.nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        torch.nn.init.normal_(module.weight, 0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)
    elif isinstance(module, torch.nn.BatchNorm2d):
        torch.nn.init.ones_(module.weight)
        torch.nn.init.zeros_(module.bias)
    elif isinstance(module, torch.nn.Linear):
        bound = 1.0 / math.sqrt(module.weight.shape[0])
        torch.nn.init.uniform_(module.weight, -bound, bound)
        torch.nn.init.zeros_(module.bias)


def _timm_builder_probe() -> None:
    """timm's EfficientNetBuilder instantiates a throwaway SqueezeExcite(8) (two 8->8 1x1 convs with bias) to
    probe its arguments; making the same draws keeps every later initialisation equal to timm's."""
    torch.nn.Conv2d(8, 8, 1)
    torch.nn.Conv2d(8, 8, 1)


class EfficientNetLite(torch.nn.Module):
    """timm's `tf_efficientnet_lite0`: images normalised with mean 0.5, std 0.5 -> 1000 ImageNet logits."""

    def __init__(self, stages: tuple[tuple[str, int, int, int, int, int], ...] = LITE0_STAGES) -> None:
        super().__init__()
        self.conv_stem = tf_conv(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = _bn(STEM_CHANNELS)
        self.act1 = torch.nn.ReLU6(inplace=True)
        _timm_builder_probe()
        cin = STEM_CHANNELS
        stage_modules = []
        for kind, repeats, kernel, stride, expansion, cout in stages:
            blocks: list[torch.nn.Module] = []
            for j in range(repeats):
                s = stride if j == 0 else 1
                if kind == "ds":
                    blocks.append(DepthwiseSeparableConv(cin, cout, kernel, s))
                else:
                    blocks.append(InvertedResidual(cin, cout, kernel, s, expansion))
                cin = cout
            stage_modules.append(torch.nn.Sequential(*blocks))
        self.blocks = torch.nn.Sequential(*stage_modules)
        self.conv_head = tf_conv(cin, HEAD_CHANNELS, 1)
        self.bn2 = _bn(HEAD_CHANNELS)
        self.act2 = torch.nn.ReLU6(inplace=True)
        self.classifier = torch.nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        for module in self.modules():  # timm: efficientnet_init_weights, in named_modules() order
            _init_weight_goog(module)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        return self.act2(self.bn2(self.conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.forward_features(x), 1).flatten(1))


def efficientnet_lite0() -> EfficientNetLite:
    return EfficientNetLite(LITE0_STAGES)
