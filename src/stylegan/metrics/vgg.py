"""VGG16 as NVIDIA's metrics use it (`vgg16.pkl`): fc7 features for precision/recall, LPIPS for PPL.

NVIDIA's detector is torchvision's ImageNet VGG16 with the LPIPS v0.1 'vgg' linear layers (Zhang et al.,
"The Unreasonable Effectiveness of Deep Features as a Perceptual Metric") on top: torch-fidelity's tests find its
torchvision+LPIPS reimplementation equal to NVIDIA's stylegan2-ada `vgg16.pt` (fc7 features to 1e-4, LPIPS to 1e-5).
This module computes the same things:

- `VGG16.forward`, as `vgg16(img, return_features=True)`: pixels in [0, 255] resized to 224x224 with
  TensorFlow 1.x bilinear resampling (`resize_bilinear_tf`), ImageNet mean/std normalisation, the fc7
  activations (4096, after ReLU).
- `VGG16.lpips_embedding`, as `vgg16(img, resize_images=False, return_lpips=True)`: a vector whose squared
  Euclidean distances are LPIPS distances: pixels in [0, 255] mapped to [-1, 1], LPIPS's scaling layer, the
  relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 activations, each unit-normalised over channels and
  weighted by sqrt(lin weight / (H W)). `VGG16.lpips` is the same distance computed directly.

Weights come from files only, never random. State-dict layout (torchvision and LPIPS names):

    features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias}   the 13 3x3 convolutions
    classifier.{0,3}.{weight,bias}                                 fc6 [4096, 25088], fc7 [4096, 4096]
    lin{0..4}.weight   [1, C, 1, 1], C = 64, 128, 256, 512, 512    LPIPS linear layers (non-negative)

`load_vgg16` reads this from any number of safetensors or torch files (loaded with `weights_only=True`)
whose union holds it, such as torchvision's `vgg16-397923af.pth` (its fc8 `classifier.6.*` is ignored) and
LPIPS's `weights/v0.1/vgg.pth` (`lin{i}.model.1.weight`). Without paths it uses those two files from
`detectors.cache_dir()/detectors` (`$STYLEGAN_CACHE`, else `$XDG_CACHE_HOME/stylegan`, else
`~/.cache/stylegan`), downloading and sha256-checking them when missing; offline, it fails with one line
(`DetectorUnavailable`) naming the files and where they go. (NVIDIA's own `vgg16.pkl` is a pickled
TorchScript module; it is not read here, since unpickling runs arbitrary code.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import download
from ..io.download import WeightsFile
from ..io.images import from_uint8
from . import detectors
from .detectors import DetectorUnavailable

INPUT_SIZE = 224
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_LPIPS_TAPS = (3, 8, 15, 22, 29)  # indices in `features` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


TORCHVISION_VGG16 = WeightsFile(
    "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth",
    "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0")
LPIPS_VGG = WeightsFile(
    "lpips-v0.1-vgg.pth",
    "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth",
    "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868")


def resize_bilinear_tf(x: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, H, W] float -> [N, C, size, size], as TensorFlow 1.x `resize_bilinear` (align_corners=False).

    Output pixel i samples the input at i * in / out (no half-pixel offset), clamped at the last pixel.
    """
    assert x.ndim == 4 and x.is_floating_point(), f"expected a float [N, C, H, W] tensor, got {x.dtype} {list(x.shape)}"

    def axis(x: torch.Tensor, dim: int) -> torch.Tensor:
        n = x.shape[dim]
        src = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(n / size, dtype=torch.float32)
        lo = src.floor().long()
        hi = src.ceil().long().clamp(max=n - 1)
        shape = [1] * x.ndim
        shape[dim] = size
        frac = (src - lo).reshape(shape).to(x.dtype)
        a, b = x.index_select(dim, lo), x.index_select(dim, hi)
        return a + (b - a) * frac

    return axis(axis(x, 3), 2)  # x first, then y, as TensorFlow combines them


def _per_channel(values: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(1, 3, 1, 1)


class VGG16(torch.nn.Module):
    """VGG16 (torchvision layout) up to fc7, with the LPIPS v0.1 linear layers `lin0`..`lin4` when `lpips`."""

    def __init__(self, lpips: bool = True) -> None:
        super().__init__()
        self.has_lpips = lpips
        layers: list[torch.nn.Module] = []
        channels = 3
        for v in _CONFIG:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(channels, v, 3, padding=1), torch.nn.ReLU()]
                channels = v
        self.features = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Sequential(  # fc6, fc7 (the dropouts keep torchvision's indices)
            torch.nn.Linear(512 * 7 * 7, 4096), torch.nn.ReLU(), torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU())
        for i, c in enumerate(LPIPS_CHANNELS if lpips else ()):
            setattr(self, f"lin{i}", torch.nn.Conv2d(c, 1, 1, bias=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] pixels in [0, 255] (uint8 or float) -> fc7 features [N, 4096] (after ReLU)."""
        assert images.ndim == 4 and images.shape[1] == 3, f"expected [N, 3, H, W] images, got {list(images.shape)}"
        x = resize_bilinear_tf(images.to(torch.float32), INPUT_SIZE)
        x = (x - 255 * _per_channel(_IMAGENET_MEAN, x)) / (255 * _per_channel(_IMAGENET_STD, x))
        x = F.adaptive_avg_pool2d(self.features(x), 7).flatten(1)
        return self.classifier(x)

    def _lpips_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The five unit-normalised LPIPS feature maps of [N, 3, H, W] pixels in [0, 255]."""
        assert self.has_lpips, "this VGG16 was built without the LPIPS layers"
        assert images.ndim == 4 and images.shape[1] == 3, f"expected [N, 3, H, W] images, got {list(images.shape)}"
        x = from_uint8(images)
        x = (x - _per_channel(_LPIPS_SHIFT, x)) / _per_channel(_LPIPS_SCALE, x)
        taps = []
        for i, layer in enumerate(self.features[:_LPIPS_TAPS[-1] + 1]):
            x = layer(x)
            if i in _LPIPS_TAPS:
                taps.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return taps

    def lpips_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] pixels in [0, 255] (not resized) -> [N, D] with |e(x) - e(y)|^2 = LPIPS(x, y)."""
        parts = []
        for i, f in enumerate(self._lpips_features(images)):
            weight = getattr(self, f"lin{i}").weight.reshape(1, -1, 1, 1)
            parts.append((f * (weight / (f.shape[2] * f.shape[3])).sqrt()).flatten(1))
        return torch.cat(parts, dim=1)

    def lpips(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS v0.1 distance [N] between [N, 3, H, W] images with pixels in [0, 255], computed directly."""
        assert x.shape == y.shape, f"image shapes differ: {list(x.shape)} vs {list(y.shape)}"
        dist = torch.zeros(x.shape[0], device=x.device)
        for i, (fx, fy) in enumerate(zip(self._lpips_features(x), self._lpips_features(y))):
            dist += getattr(self, f"lin{i}")((fx - fy).square()).mean([1, 2, 3])
        return dist


# ----------------------------------------------------------------------------- weights


def fetch_weights(files: Sequence[WeightsFile], what: str, cache: Path | None = None) -> list[Path]:
    """Paths of `files` in the cache, downloaded (sha256-checked) where missing (stylegan.io.download), or
    DetectorUnavailable in one line naming every missing file's URL and where to put it."""
    cache = detectors.cache_dir() / "detectors" if cache is None else Path(cache)
    return download.fetch_weights(files, what, cache, DetectorUnavailable, fetch=lambda url, dest: detectors.fetch_url(url, dest))


def _rename(key: str) -> str | None:
    """Our name for a state-dict key (LPIPS's `linN.model.1.weight` -> `linN.weight`); None to ignore it."""
    if key.startswith("classifier.6."):  # fc8, the ImageNet logits
        return None
    parts = key.split(".")
    if len(parts) == 4 and parts[0].startswith("lin") and parts[1:] == ["model", "1", "weight"]:
        return f"{parts[0]}.weight"
    return key


def load_vgg16(paths: Sequence[str | os.PathLike] | None = None, *, lpips: bool = True,
               device: torch.device | str = "cpu", what: str = "VGG16", cache: Path | None = None) -> VGG16:
    """The VGG16 of this module with weights from `paths` (or the cached/downloaded default files), in eval mode.

    `lpips=False` needs (and, by default, fetches) only the torchvision weights. DetectorUnavailable (one line) for
    missing files, keys or shapes; `what` names the caller in the offline message.
    """
    if paths is None:
        paths = fetch_weights([TORCHVISION_VGG16] + ([LPIPS_VGG] if lpips else []), what, cache)
    with torch.device("meta"):  # no random initialisation: every weight comes from the files
        net = VGG16(lpips=lpips)
    expected = net.state_dict()
    state: dict[str, torch.Tensor] = {}
    for path in map(Path, paths):
        for key, value in download.read_state_dict(path, DetectorUnavailable).items():
            name = _rename(key)
            if name is None or (not lpips and name.startswith("lin")):
                continue
            if name not in expected:
                raise DetectorUnavailable(f"{path}: unexpected key {key!r}; see stylegan.metrics.vgg for the layout")
            if value.shape != expected[name].shape:
                raise DetectorUnavailable(f"{path}: {key} has shape {list(value.shape)}, expected {list(expected[name].shape)}")
            state[name] = value.to(torch.float32)
    missing = [k for k in expected if k not in state]
    if missing:
        raise DetectorUnavailable(f"{', '.join(map(str, paths))}: no {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
                           f" ({len(missing)} missing); see stylegan.metrics.vgg for the layout")
    if lpips and any((state[f"lin{i}.weight"] < 0).any() for i in range(len(LPIPS_CHANNELS))):
        raise DetectorUnavailable(f"{', '.join(map(str, paths))}: LPIPS linear weights must be non-negative")
    net.load_state_dict(state, assign=True)
    return net.eval().requires_grad_(False).to(device)
