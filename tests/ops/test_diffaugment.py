"""DiffAugment against a plain per-image, per-pixel re-computation with the same random draws."""

from __future__ import annotations

import pytest
import torch

from stylegan.ops.diffaugment import diff_augment


def _draws(n: int, h: int, w: int, seed: int):
    """The random numbers in the official order: brightness, saturation, contrast, translation (y, x), cutout (y, x)."""
    g = torch.Generator().manual_seed(seed)
    b, s, c = (torch.rand(n, 1, 1, 1, generator=g).flatten() for _ in range(3))
    sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
    ty = torch.randint(-sh, sh + 1, [n, 1, 1], generator=g).flatten()
    tx = torch.randint(-sw, sw + 1, [n, 1, 1], generator=g).flatten()
    ch, cw = int(h * 0.2 + 0.5), int(w * 0.2 + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), [n, 1, 1], generator=g).flatten()
    ox = torch.randint(0, w + (1 - cw % 2), [n, 1, 1], generator=g).flatten()
    return b, s, c, ty, tx, oy, ox, ch, cw


def _plain(x: torch.Tensor, seed: int) -> torch.Tensor:
    n, C, h, w = x.shape
    b, s, c, ty, tx, oy, ox, ch, cw = _draws(n, h, w, seed)
    out = torch.zeros_like(x)
    for i in range(n):
        img = x[i] + (b[i] - 0.5)
        m = img.mean(0, keepdim=True)
        img = (img - m) * (s[i] * 2) + m
        m = img.mean()
        img = (img - m) * (c[i] + 0.5) + m
        shifted = torch.zeros_like(img)
        for yy in range(h):
            for xx in range(w):
                sy, sx = yy + int(ty[i]), xx + int(tx[i])  # output pixel (yy, xx) reads input (sy, sx), 0 outside
                if 0 <= sy < h and 0 <= sx < w:
                    shifted[:, yy, xx] = img[:, sy, sx]
        for yy in range(h):
            for xx in range(w):
                cy, cx = int(oy[i]) - ch // 2, int(ox[i]) - cw // 2
                if cy <= yy < cy + ch and cx <= xx < cx + cw:
                    shifted[:, yy, xx] = 0
        out[i] = shifted
    return out


@pytest.mark.parametrize("shape", [(3, 3, 16, 16), (2, 3, 13, 10), (4, 1, 8, 8)])
def test_matches_plain_computation(shape):
    x = torch.randn(shape)
    ours = diff_augment(x, "color,translation,cutout", generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, _plain(x, 7), rtol=1e-5, atol=1e-5)


def test_global_rng_and_gradients():
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    torch.manual_seed(3)
    a = diff_augment(x)
    torch.manual_seed(3)
    b = diff_augment(x)
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, ""), x)
    with pytest.raises(ValueError, match="policy"):
        diff_augment(x, "color,blur")
