"""Make fixtures/xl_d_reference.npz by running the official StyleGAN-XL discriminator and loss (not run by the
tests; needs the official code and timm 0.4.12, which the product never uses).

    pip download --no-deps timm==0.4.12 -d /tmp/t && unzip -q /tmp/t/timm-0.4.12-py3-none-any.whl -d /tmp/timm
    git -C <stylegan-xl clone> archive 4241ff9 pg_modules feature_networks training torch_utils dnnlib in_embeddings legacy.py | tar -x -C /tmp/xl
    python tests/models/make_xl_reference.py --timm /tmp/timm --xl /tmp/xl

The official code imports torchvision (only `transforms.Normalize` is used here), dill (its `_load_type`, for the
class-embedding pickle), ftfy and regex (CLIP's tokenizer, unused); small stand-ins are installed for them.
timm's `create_model` is called with pretrained=False (weights come from the name-keyed recipe).
"""

from __future__ import annotations

import argparse
import builtins
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import xl_reference as ref  # noqa: E402


def _install_stand_ins() -> None:
    class Normalize(torch.nn.Module):  # torchvision.transforms.Normalize: clone, subtract mean, divide by std
        def __init__(self, mean, std, inplace=False):
            super().__init__()
            self.mean, self.std = mean, std

        def forward(self, x):
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            return x.clone().sub_(mean).div_(std)

    def module(name: str, **attrs) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        m.__getattr__ = lambda attr: types.SimpleNamespace()  # anything else timm's data package touches
        sys.modules[name] = m
        return m

    tv = module("torchvision")
    tv.transforms = module("torchvision.transforms", Normalize=Normalize, InterpolationMode=types.SimpleNamespace(
        NEAREST="nearest", BILINEAR="bilinear", BICUBIC="bicubic", BOX="box", HAMMING="hamming", LANCZOS="lanczos"))
    tv.transforms.functional = module("torchvision.transforms.functional")
    tv.models = module("torchvision.models")
    tv.datasets = module("torchvision.datasets")
    dill = module("dill", extend=lambda use_dill=True: None)
    special = {"ClassType": type, "TypeType": type, "NoneType": type(None)}
    dill._dill = module("dill._dill", _load_type=lambda name: special.get(name) or getattr(builtins, name, None) or getattr(types, name))
    module("ftfy")
    module("regex", IGNORECASE=2, compile=lambda *a, **k: None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timm", required=True, help="folder holding timm 0.4.12's `timm` package")
    ap.add_argument("--xl", required=True, help="StyleGAN-XL checkout (commit 4241ff9)")
    args = ap.parse_args()
    _install_stand_ins()
    sys.path[:0] = [args.timm, args.xl]
    os.chdir(args.xl)  # the conditional mini-discriminators read in_embeddings/ relative to the working directory
    import timm
    create = timm.create_model
    timm.create_model = lambda name, pretrained=False, **kw: create(name, pretrained=False, **kw)
    import feature_networks.pretrained_builder as builder
    builder.timm.create_model = timm.create_model
    from pg_modules.discriminator import ProjectedDiscriminator
    from training.loss import ProjectedGANLoss

    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {"meta/torch": np.array(torch.__version__), "meta/timm": np.array(timm.__version__)}

    def build(name: str) -> torch.nn.Module:
        torch.manual_seed(0)
        D = ProjectedDiscriminator(**ref.official_kwargs(name))
        D.load_state_dict(ref.recipe_state(D), strict=True)
        return D

    for name in ref.CONFIGS:
        D = build(name)
        out[f"{name}/keys"] = np.array([f"{k} {list(v.shape)}" for k, v in D.state_dict().items()])
        img, c = ref.inputs(name)
        D.eval()
        torch.manual_seed(ref.EVAL_SEED)
        with torch.no_grad():
            out[f"{name}/eval_rows"] = torch.stack(D(img, c)).numpy()
        D.train()
        torch.manual_seed(ref.TRAIN_SEED)
        with torch.no_grad():
            out[f"{name}/train_rows"] = torch.stack(D(img, c)).numpy()
        out.update({f"{name}/after_train/{k}": v for k, v in ref.buffer_summary(D).items()})
        print(name, "done", flush=True)

    z, c, real = ref.loss_inputs()
    for case, phase, cur_nimg, cls_weight, head_only in ref.LOSS_CASES:
        D = build("tiny_lite0_cond").train()
        G = ref.toy_g()
        loss = ProjectedGANLoss("cpu", G, D, G, blur_init_sigma=2, blur_fade_kimg=300, pl_weight=2.0,
                                cls_model="deit_small_distilled_patch16_224", cls_weight=cls_weight, train_head_only=head_only)
        loss.classifier[1].load_state_dict(ref.recipe_state(loss.classifier[1], "cls."), strict=True)
        loss.pl_mean.fill_(ref.PL_MEAN_START)
        trained = G if phase.startswith("G") else D
        trained.requires_grad_(True)
        if trained is D:
            D.feature_networks.requires_grad_(False)
        torch.manual_seed(ref.LOSS_SEED)
        loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, gain=1, cur_nimg=cur_nimg)
        out.update({f"loss/{case}/grad/{k}": v for k, v in ref.grad_summary(trained).items()})
        out.update({f"loss/{case}/buffers/{k}": v for k, v in ref.buffer_summary(D).items()})
        out[f"loss/{case}/pl_mean"] = loss.pl_mean.numpy()
        out[f"loss/{case}/w_avg"] = G.mapping.w_avg.numpy()
        print(case, "done", flush=True)

    ref.FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(ref.FIXTURE, **out)
    print(ref.FIXTURE, ref.FIXTURE.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
