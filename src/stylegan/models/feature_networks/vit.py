"""DeiT (distilled) vision transformers as timm 0.4.12 builds `deit_{tiny,small,base}_distilled_patch16_224`.

Touvron et al., "Training data-efficient image transformers & distillation through attention" (2021): a ViT-*/16
(Dosovitskiy et al. 2021) with a class token and a distillation token, pre-norm blocks (LayerNorm eps 1e-6,
multi-head self-attention, GELU MLP with ratio 4), a final LayerNorm and two linear heads whose logits are
averaged at inference.

Module tree and tensor names are timm's: `cls_token`, `dist_token`, `pos_embed`, `patch_embed.proj`,
`blocks.{i}.norm1`, `blocks.{i}.attn.qkv`, `blocks.{i}.attn.proj`, `blocks.{i}.norm2`, `blocks.{i}.mlp.fc1`,
`blocks.{i}.mlp.fc2`, `norm`, `head`, `head_dist`. Construction consumes torch's global RNG as timm's does
(PyTorch's default init of every conv/linear in construction order, then trunc_normal_ of pos_embed, dist_token,
cls_token and of every linear weight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PATCH_SIZE = 16
IMG_SIZE = 224
NUM_CLASSES = 1000
LN_EPS = 1e-6


@dataclass(frozen=True)
class DeiTSpec:
    embed_dim: int
    num_heads: int
    depth: int = 12
    mlp_ratio: int = 4


DEIT_SPECS = {
    "deit_tiny_distilled_patch16_224": DeiTSpec(192, 3),
    "deit_small_distilled_patch16_224": DeiTSpec(384, 6),
    "deit_base_distilled_patch16_224": DeiTSpec(768, 12),
}


class PatchEmbed(torch.nn.Module):
    """Non-overlapping 16x16 patches -> embed_dim channels (a 16x16 stride-16 conv)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = torch.nn.Conv2d(3, embed_dim, PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, C]


class Attention(torch.nn.Module):
    """softmax(q k^T / sqrt(head_dim)) v over heads, then a linear projection (timm's op order)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = torch.nn.Linear(dim, dim * 3)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(torch.nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(dim, hidden)
        self.fc2 = torch.nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(torch.nn.Module):
    """x + attn(norm1(x)), then + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = torch.nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@torch.no_grad()
def trunc_normal_inverse_cdf_(t: torch.Tensor, std: float, a: float = -2.0, b: float = 2.0) -> torch.Tensor:
    """N(0, std^2) truncated to [a, b] by inverse-CDF sampling (u ~ U(2 Phi(a/std) - 1, 2 Phi(b/std) - 1),
    x = std sqrt(2) erfinv(u)), as timm 0.4.12 draws it; torch's own trunc_normal_ now uses rejection sampling,
    which gives other values from the same seed."""
    cdf = lambda x: (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0  # noqa: E731
    t.uniform_(2 * cdf(a / std) - 1, 2 * cdf(b / std) - 1)
    t.erfinv_().mul_(std * math.sqrt(2.0))
    return t.clamp_(min=a, max=b)


def resize_pos_embed(pos_embed: torch.Tensor, num_tokens: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Position embeddings of the token grid, bilinearly resized (align_corners=False) from the trained square
    grid to grid_h x grid_w; the class/distillation token embeddings are kept."""
    tokens, grid = pos_embed[:, :num_tokens], pos_embed[0, num_tokens:]
    side = int(grid.shape[0] ** 0.5)
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bilinear", align_corners=False)
    return torch.cat([tokens, grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)], dim=1)


class DistilledViT(torch.nn.Module):
    """DeiT distilled: images normalised with ImageNet mean/std -> 1000 ImageNet logits."""

    num_tokens = 2  # class + distillation token

    def __init__(self, spec: DeiTSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.spec = spec
        self.patch_embed = PatchEmbed(dim)
        num_patches = (IMG_SIZE // PATCH_SIZE) ** 2
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = torch.nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, num_patches + self.num_tokens, dim))
        self.blocks = torch.nn.Sequential(*[Block(dim, spec.num_heads, spec.mlp_ratio) for _ in range(spec.depth)])
        self.norm = torch.nn.LayerNorm(dim, eps=LN_EPS)
        self.head = torch.nn.Linear(dim, NUM_CLASSES)
        self.head_dist = torch.nn.Linear(dim, NUM_CLASSES)
        with torch.no_grad():  # timm's init_weights('')
            for p in (self.pos_embed, self.dist_token, self.cls_token):
                trunc_normal_inverse_cdf_(p, std=0.02)
            for m in self.modules():
                if isinstance(m, torch.nn.Linear):
                    trunc_normal_inverse_cdf_(m.weight, std=0.02)
                    torch.nn.init.zeros_(m.bias)
                elif isinstance(m, torch.nn.LayerNorm):
                    torch.nn.init.zeros_(m.bias)
                    torch.nn.init.ones_(m.weight)

    def _tokens(self, x: torch.Tensor, pos_embed: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        B = x.shape[0]
        x = torch.cat([self.cls_token.expand(B, -1, -1), self.dist_token.expand(B, -1, -1), x], dim=1)
        return x + pos_embed

    def forward_hooks(self, x: torch.Tensor, hooks: tuple[int, ...]) -> list[torch.Tensor]:
        """Token sequences [B, 2 + h w, C] after the blocks `hooks` (0-based), for any input size divisible by
        16: the position embeddings are resized to the token grid (StyleGAN-XL's `forward_flex`)."""
        h, w = x.shape[2] // PATCH_SIZE, x.shape[3] // PATCH_SIZE
        x = self._tokens(x, resize_pos_embed(self.pos_embed, self.num_tokens, h, w))
        out = []
        for i in range(max(hooks) + 1):
            x = self.blocks[i](x)
            if i in hooks:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 224, 224] -> logits [B, 1000], the mean of the class and distillation heads (timm in eval)."""
        if x.shape[2:] != (IMG_SIZE, IMG_SIZE):
            raise ValueError(f"DeiT classifies {IMG_SIZE}x{IMG_SIZE} images, got {list(x.shape)}")
        x = self.norm(self.blocks(self._tokens(x, self.pos_embed)))
        return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2


def deit_distilled(name: str) -> DistilledViT:
    if name not in DEIT_SPECS:
        raise ValueError(f"unknown DeiT {name!r}; known: {', '.join(DEIT_SPECS)}")
    return DistilledViT(DEIT_SPECS[name])
