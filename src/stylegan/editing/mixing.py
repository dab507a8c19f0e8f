"""Style mixing (StyleGAN paper §3.1, fig. 3): some layers' ws of one latent replaced by another latent's."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def mix_styles(ws_rows: torch.Tensor, ws_cols: torch.Tensor, styles: Sequence[int]) -> torch.Tensor:
    """ws_rows [R, num_ws, w_dim], ws_cols [C, num_ws, w_dim] -> [R, C, num_ws, w_dim].

    Entry (r, c) is ws_rows[r] with the layers listed in `styles` taken from ws_cols[c], as NVIDIA's
    style_mixing.py builds its matrix (`w = w_row.clone(); w[styles] = w_col[styles]`).
    """
    if ws_rows.ndim != 3 or ws_cols.ndim != 3 or ws_rows.shape[1:] != ws_cols.shape[1:]:
        raise ValueError(f"ws_rows and ws_cols must be [N, num_ws, w_dim] with equal num_ws and w_dim, "
                         f"got {list(ws_rows.shape)} and {list(ws_cols.shape)}")
    num_ws = ws_rows.shape[1]
    bad = [s for s in styles if not 0 <= s < num_ws]
    if bad:
        raise ValueError(f"styles {bad} out of range: the network has num_ws={num_ws} (layers 0..{num_ws - 1})")
    take = torch.zeros([num_ws], dtype=torch.bool, device=ws_rows.device)
    take[list(styles)] = True
    return torch.where(take[None, None, :, None], ws_cols[None], ws_rows[:, None])
