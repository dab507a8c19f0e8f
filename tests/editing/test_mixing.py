"""mix_styles against NVIDIA's per-pair indexing."""

from __future__ import annotations

import pytest
import torch

from stylegan.editing.mixing import mix_styles


@pytest.mark.parametrize("styles", [[0, 1, 2, 3, 4, 5, 6], [8, 9], [3], list(range(10))])
def test_mix_styles_matches_direct_indexing(styles):
    g = torch.Generator().manual_seed(0)
    rows, cols = torch.randn([3, 10, 16], generator=g), torch.randn([4, 10, 16], generator=g)
    out = mix_styles(rows, cols, styles)
    assert out.shape == (3, 4, 10, 16)
    for r in range(3):
        for c in range(4):
            w = rows[r].clone()
            w[styles] = cols[c][styles]
            assert torch.equal(out[r, c], w)
    kept = [i for i in range(10) if i not in styles]
    assert torch.equal(out[:, :, kept], rows[:, None, kept].expand(3, 4, len(kept), 16))


def test_mix_styles_errors():
    with pytest.raises(ValueError, match=r"styles \[10\] out of range: the network has num_ws=10"):
        mix_styles(torch.zeros([1, 10, 4]), torch.zeros([1, 10, 4]), [0, 10])
    with pytest.raises(ValueError, match="equal num_ws"):
        mix_styles(torch.zeros([1, 10, 4]), torch.zeros([1, 8, 4]), [0])
