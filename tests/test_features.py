"""Feature backbones: registry, weight-free banks, FeatureMap strips, PCA, ResNet-50.

The ResNet-50 tests use a *randomly initialised* network saved to a temporary
file: no test downloads weights or touches the network.
"""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from _synthetic import disk_image
from napari_deepseg.core import SegmentationSession, WeightsUnavailableError, available_backbones, get_extractor
from napari_deepseg.core.features import FeatureExtractor, FeatureMap
from napari_deepseg.core.features.base import upsample_grid
from napari_deepseg.core.features.compress import pca_compress, standardize
from napari_deepseg.core.utils.progress import CancelToken, Cancelled
from napari_deepseg.core.utils.validation import as_float_image

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

RESNET50_FILE = "resnet50-11ad3fa6.pth"


# =========================================================================== registry
def test_available_backbones():
    names = available_backbones()
    assert {"rgb", "classic", "resnet50"} <= set(names)
    for name in names:
        ex = get_extractor(name)  # construction is cheap: nothing is loaded
        assert isinstance(ex, FeatureExtractor)
        assert ex.name == name


@pytest.mark.parametrize("bad", ["resnet", "", "RGB", None, 3])
def test_unknown_backbone_lists_names(bad):
    with pytest.raises(ValueError) as info:
        get_extractor(bad)
    msg = str(info.value)
    assert "unknown backbone" in msg
    for name in available_backbones():
        assert name in msg


def test_get_extractor_passes_an_instance_through():
    ex = get_extractor("classic", sigmas=(1.0,))
    assert get_extractor(ex) is ex


# =========================================================================== weight-free backbones
def _float_disk(channels=3, shape=(40, 48), seed=0):
    img, truth = disk_image(shape, channels=channels, seed=seed)
    return as_float_image(img), truth


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_rgb_features(channels):
    x, _ = _float_disk(channels)
    fm = get_extractor("rgb").extract(x)
    assert fm.stride == 1 and fm.image_shape == (40, 48)
    assert fm.data.dtype == np.float32
    np.testing.assert_array_equal(fm.data, x)
    np.testing.assert_array_equal(fm.full_res(), x)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_classic_features(channels):
    x, truth = _float_disk(channels)
    fm = get_extractor("classic").extract(x)
    assert fm.stride == 1
    assert fm.image_shape == (40, 48)
    assert fm.data.shape[:2] == (40, 48)
    assert 1 <= fm.channels <= 32
    assert fm.data.dtype == np.float32
    assert np.all(np.isfinite(fm.data))
    # channels are z-scored: centred, and each channel varies
    flat = fm.data.reshape(-1, fm.channels)
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-3)
    assert np.all(flat.std(0) > 0.1)
    # the features tell the disk from the background
    inside, outside = flat[truth.ravel()].mean(0), flat[~truth.ravel()].mean(0)
    assert np.linalg.norm(inside - outside) > 1.0


def test_classic_channel_counts_and_pca_cap():
    x3, _ = _float_disk(3)
    x1, _ = _float_disk(1)
    # per sigma: smoothed base channels + gradient + LoG + 2 structure-tensor + 2 Hessian eigenvalues
    assert get_extractor("classic", sigmas=(1.0,)).extract(x3).channels == 3 + 3 + 6
    assert get_extractor("classic", sigmas=(1.0,)).extract(x1).channels == 1 + 1 + 6
    capped = get_extractor("classic", sigmas=(1.0, 2.0), n_components=5).extract(x3)
    assert capped.channels == 5
    assert capped.data.dtype == np.float32


@pytest.mark.parametrize("sigmas", [(), (0.0,), (1.0, -2.0)])
def test_classic_bad_sigmas(sigmas):
    with pytest.raises(ValueError, match="sigmas must be positive"):
        get_extractor("classic", sigmas=sigmas)


def test_classic_params_change_with_settings():
    a, b = get_extractor("classic"), get_extractor("classic", sigmas=(1.0,))
    assert a.params() != b.params()
    assert a.params() == get_extractor("classic").params()


def test_classic_progress_and_cancel():
    x, _ = _float_disk(3)
    calls = []
    get_extractor("classic").extract(x, progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(0 <= d <= t for d, t, _ in calls)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        get_extractor("classic").extract(x, cancel=token)


# =========================================================================== FeatureMap
def _bilinear_reference(grid, stride, rows, cols):
    """Independent numpy bilinear upsampling, ``align_corners=False`` with edge clamping."""

    def axis(n, size):
        src = np.maximum((np.arange(n) + 0.5) / stride - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), size - 1)
        i1 = np.minimum(i0 + 1, size - 1)
        return i0, i1, (src - i0)

    y0, y1, fy = axis(rows, grid.shape[0])
    x0, x1, fx = axis(cols, grid.shape[1])
    top = grid[y0][:, x0] * (1 - fx)[None, :, None] + grid[y0][:, x1] * fx[None, :, None]
    bot = grid[y1][:, x0] * (1 - fx)[None, :, None] + grid[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bot * fy[:, None, None]


@pytest.mark.parametrize("stride, image_shape", [(8, (100, 130)), (4, (37, 50)), (2, (9, 11)), (16, (64, 64))])
def test_full_res_is_bilinear(stride, image_shape):
    rows, cols = image_shape
    gh, gw = math.ceil(rows / stride), math.ceil(cols / stride)
    grid = np.random.default_rng(1).normal(size=(gh, gw, 5)).astype(np.float32)
    fm = FeatureMap(grid, stride, image_shape)
    full = fm.full_res()
    assert full.shape == (rows, cols, 5) and full.dtype == np.float32
    np.testing.assert_allclose(full, _bilinear_reference(grid, stride, rows, cols), atol=1e-5)
    assert fm.full_res_nbytes() == rows * cols * 5 * 4
    assert fm.nbytes == grid.nbytes


@pytest.mark.parametrize("overlap", [0, 1])
def test_iter_full_res_strips_join_exactly(overlap):
    rows, cols, stride = 203, 131, 8
    grid = np.random.default_rng(2).normal(size=(math.ceil(rows / 8), math.ceil(cols / 8), 6)).astype(np.float32)
    fm = FeatureMap(grid, stride, (rows, cols))
    full = fm.full_res()
    strips = list(fm.iter_full_res(max_bytes=cols * 6 * 4 * 11, overlap=overlap))  # 11 rows a strip
    assert len(strips) > 10
    starts = [s for s, _, _ in strips]
    stops = [e for _, e, _ in strips]
    assert starts[0] == 0 and stops[-1] == rows and starts[1:] == stops[:-1]
    for start, stop, block in strips:
        lo = max(0, start - overlap)
        assert block.shape == (stop - lo, cols, 6)
        np.testing.assert_array_equal(block, full[lo:stop])
    joined = np.concatenate([b[b.shape[0] - (e - s) :] for s, e, b in strips])
    np.testing.assert_array_equal(joined, full)


def test_upsample_rows_any_window_matches_full():
    rng = np.random.default_rng(3)
    grid = rng.normal(size=(7, 9, 3)).astype(np.float32)
    fm = FeatureMap(grid, 8, (53, 70))
    full = fm.full_res()
    for start, stop in [(0, 1), (5, 6), (7, 9), (15, 17), (8, 16), (31, 53), (52, 53), (0, 53)]:
        np.testing.assert_array_equal(fm.upsample_rows(start, stop), full[start:stop])
    np.testing.assert_array_equal(upsample_grid(grid, 8, 10, 20, 70), full[10:20])


def test_stride_one_crops_padding():
    grid = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    fm = FeatureMap(grid, 1, (4, 5))
    np.testing.assert_array_equal(fm.full_res(), grid[:4, :5])


# =========================================================================== compression
def test_standardize():
    x = np.random.default_rng(0).normal([5, -3], [3, 0.5], (20, 20, 2)).astype(np.float32)
    out = standardize(x)
    flat = out.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(flat.std(0), 1, atol=1e-4)
    # a constant channel does not become NaN
    const = standardize(np.ones((4, 4, 1), np.float32))
    assert np.all(np.isfinite(const))


def test_pca_compress_keeps_dominant_direction():
    rng = np.random.default_rng(4)
    ch = 40
    direction = rng.normal(size=ch)
    direction /= np.linalg.norm(direction)
    score = rng.normal(size=(30, 25)) * 10.0  # strong signal along `direction`
    data = (score[..., None] * direction + rng.normal(size=(30, 25, ch)) * 0.5 + 3.0).astype(np.float32)
    out = pca_compress(data, 3)
    assert out.shape == (30, 25, 3) and out.dtype == np.float32
    first = out[..., 0].ravel()
    corr = np.corrcoef(first, score.ravel())[0, 1]
    assert abs(corr) > 0.99
    # components are centred and ordered by variance
    var = out.reshape(-1, 3).var(0)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), 0, atol=1e-3)
    assert var[0] > 50 * var[1] and var[1] >= var[2]


def test_pca_compress_subsampled_fit_still_finds_direction():
    rng = np.random.default_rng(5)
    direction = np.zeros(16)
    direction[3] = 1.0
    score = rng.normal(size=(60, 60)) * 5.0
    data = (score[..., None] * direction + rng.normal(size=(60, 60, 16)) * 0.3).astype(np.float32)
    out = pca_compress(data, 2, max_samples=200)
    assert abs(np.corrcoef(out[..., 0].ravel(), score.ravel())[0, 1]) > 0.99


def test_pca_compress_few_channels_only_centres():
    data = np.random.default_rng(6).normal(2.0, 1.0, (6, 7, 4)).astype(np.float32)
    out = pca_compress(data, 8)
    np.testing.assert_allclose(out, data - data.reshape(-1, 4).mean(0), atol=1e-5)


def test_pca_compress_bad_components():
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        pca_compress(np.zeros((2, 2, 3), np.float32), 0)


# =========================================================================== ResNet-50 (random weights)
@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A randomly initialised resnet50 saved as .pth and .safetensors (never downloaded)."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = torchvision.models.resnet50(weights=None).state_dict()
    pth = folder / "random-resnet50.pth"
    torch.save(state, pth)
    out = {"pth": pth, "dir": folder}
    try:
        from safetensors.torch import save_file
    except ImportError:  # pragma: no cover
        out["safetensors"] = None
    else:
        st = folder / "random-resnet50.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(st))
        out["safetensors"] = st
    return out


@pytest.fixture(scope="module")
def resnet_default(random_weights):
    """The default hypercolumn (layer2,layer3), network loaded once for the module."""
    ex = get_extractor("resnet50", weights=random_weights["pth"], device="cpu")
    ex.load_model()
    return ex


@pytest.fixture(scope="module")
def small_image():
    img, _ = disk_image((64, 96), radius=20, channels=3, seed=3)
    return img


@pytest.fixture(scope="module")
def reference_features(resnet_default, small_image):
    """Uncompressed default features of ``small_image`` computed from the explicit file."""
    ex = copy.copy(resnet_default)
    ex.n_components = 4096
    return ex.extract(as_float_image(small_image)).data


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch-home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    return home


def test_weights_file_name_matches_torchvision():
    from torchvision.models import ResNet50_Weights

    from napari_deepseg.core.features.resnet import ResNet50Features
    from napari_deepseg.core.io.weights import weights_file_name

    url = ResNet50_Weights.IMAGENET1K_V2.url
    assert ResNet50Features.weights_url() == url
    assert weights_file_name(url) == RESNET50_FILE


def test_resnet_default_stride8_32_channels(resnet_default, small_image):
    assert resnet_default.layers == ("layer2", "layer3")
    assert resnet_default.needs_weights
    fm = resnet_default.extract(as_float_image(small_image))
    assert fm.stride == 8
    assert fm.image_shape == (64, 96)
    assert fm.data.shape == (8, 12, 32)
    assert fm.data.dtype == np.float32
    assert np.all(np.isfinite(fm.data))
    assert fm.full_res().shape == (64, 96, 32)


def test_resnet_uncompressed_hypercolumn_width(reference_features):
    # layer2 (512) + layer3 (1024) channels, resampled to the stride-8 grid
    assert reference_features.shape == (8, 12, 512 + 1024)


def test_resnet_layer4_stride32_gray_and_odd_size(random_weights):
    ex = get_extractor("resnet50", weights=random_weights["pth"], device="cpu", layers="layer4", n_components=8)
    img, _ = disk_image((70, 100), radius=20, channels=1)
    fm = ex.extract(as_float_image(img))
    assert fm.stride == 32
    # the grid covers the image padded to a multiple of 32
    assert fm.data.shape == (math.ceil(70 / 32), math.ceil(100 / 32), 8)
    assert fm.full_res().shape == (70, 100, 8)
    assert np.all(np.isfinite(fm.data))


def test_resnet_session_gray_and_rgba(resnet_default):
    session = SegmentationSession(copy.copy(resnet_default))
    for channels in (1, 4):
        img, truth = disk_image((64, 96), radius=20, channels=channels, seed=channels)
        scrib = np.zeros(truth.shape, np.uint8)
        scrib[30:34, 40:56] = 1
        scrib[:3, :] = 2
        session.set_image(img)
        assert session._current.features.stride == 8
        out = session.segment(scrib)
        assert out.shape == truth.shape and out.dtype == np.uint8
        assert set(np.unique(out)) <= {0, 1}
        assert np.all(out[scrib == 1] == 1) and np.all(out[scrib == 2] == 0)


def _cell_error(a, b):
    """Largest per-cell feature difference relative to the mean feature norm."""
    scale = np.linalg.norm(b - b.mean((0, 1)), axis=-1).mean()
    return float((np.linalg.norm(a - b, axis=-1) / scale).max())


@pytest.fixture(scope="module")
def seam_case(resnet_default):
    img, _ = disk_image((200, 260), radius=60, channels=3, seed=7)
    x = as_float_image(img)
    whole = copy.copy(resnet_default)
    whole.n_components = 4096  # no PCA: compare the raw hypercolumns
    whole.tile = 1024
    return x, whole, whole.extract(x).data


def test_resnet_tiles_with_sufficient_halo_are_seam_free(seam_case):
    """tile=128 with a 128-px halo reproduces the single-tile features.

    The receptive field of layer3 reaches about 130 px from a pixel, so a halo
    of 128 px leaves only a negligible border effect at the tile seams (a
    smaller tile only multiplies the forward passes: tile=64 gives the same).
    """
    x, whole, ref = seam_case
    tiled = copy.copy(whole)
    tiled.tile, tiled.halo = 128, 128
    calls = []
    out = tiled.extract(x, progress=lambda d, t, m: calls.append((d, t))).data
    assert calls[-1] == (6, 6)  # the 224 x 288 padded image in 2 x 3 tiles
    assert out.shape == ref.shape
    assert _cell_error(out, ref) < 1e-2


def test_resnet_default_halo_is_seam_free(seam_case):
    """The *default* halo should make tiling invisible for the default layers."""
    x, whole, ref = seam_case
    tiled = copy.copy(whole)
    tiled.tile = 128
    tiled.halo = type(whole)().halo  # the constructor's default
    err = _cell_error(tiled.extract(x).data, ref)
    assert err < 2e-2, (
        f"default halo={tiled.halo} px leaves seams: per-cell feature error up to {err:.0%} "
        "of the mean feature norm between tile=128 and a single tile"
    )


def test_resnet_cancel(resnet_default, small_image):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        resnet_default.extract(as_float_image(small_image), cancel=token)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tile": 100}, "multiples of 32"),
        ({"halo": 10}, "multiples of 32"),
        ({"tile": 0}, "multiples of 32"),
        ({"layers": "layer5"}, "layers must be chosen from"),
        ({"layers": ""}, "layers must be chosen from"),
    ],
)
def test_resnet_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_extractor("resnet50", **kwargs)


def test_resnet_layers_parsing():
    ex = get_extractor("resnet50", layers=["layer3", "layer1", "layer3"])
    assert ex.layers == ("layer1", "layer3")


def test_resolve_device():
    from napari_deepseg.core.features.resnet import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda")


# --------------------------------------------------------------------------- weight loading
def test_safetensors_gives_the_same_features(random_weights, small_image, reference_features):
    if random_weights["safetensors"] is None:
        pytest.skip("safetensors is not installed")
    ex = get_extractor("resnet50", weights=random_weights["safetensors"], device="cpu", n_components=4096)
    np.testing.assert_allclose(ex.extract(as_float_image(small_image)).data, reference_features, rtol=1e-5, atol=1e-5)


def test_missing_weights_file(tmp_path):
    missing = tmp_path / "nope.pth"
    ex = get_extractor("resnet50", weights=missing, device="cpu")
    with pytest.raises(WeightsUnavailableError) as info:
        ex.extract(np.zeros((32, 32, 3), np.float32))
    msg = str(info.value)
    assert "\n" not in msg and "not found" in msg and str(missing) in msg


def test_weights_of_another_architecture(tmp_path):
    other = tmp_path / "linear.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    ex = get_extractor("resnet50", weights=other, device="cpu")
    with pytest.raises(ValueError) as info:
        ex.extract(np.zeros((32, 32, 3), np.float32))
    msg = str(info.value)
    assert "\n" not in msg and "resnet50" in msg
    # the one line says what does not fit (torch's first line alone does not)
    assert "missing" in msg.lower() or "unexpected" in msg.lower(), msg


def test_weights_with_wrong_shapes(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet50(weights=None).state_dict()
    state["layer1.0.conv1.weight"] = torch.zeros(8, 8, 1, 1)
    bad = tmp_path / "resnet50-bad-shapes.pth"
    torch.save(state, bad)
    ex = get_extractor("resnet50", weights=bad, device="cpu")
    with pytest.raises(ValueError) as info:
        ex.load_model()
    msg = str(info.value)
    assert "\n" not in msg
    assert "wrong shapes 1" in msg and "layer1.0.conv1.weight" in msg and str(bad) in msg, msg


def test_fine_tuned_head_of_another_size_is_accepted(tmp_path):
    """The classifier head is stripped, so a checkpoint fine-tuned for 10 classes still serves as a backbone."""
    torch.manual_seed(0)
    tuned = torchvision.models.resnet50(weights=None, num_classes=10)
    path = tmp_path / "resnet50-10-classes.pth"
    torch.save(tuned.state_dict(), path)
    model = get_extractor("resnet50", weights=path, device="cpu").load_model()
    assert torch.equal(model.conv1.weight, tuned.conv1.weight)


def test_garbage_weights_file(tmp_path):
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00\x01 this is not a checkpoint \xff")  # binary: the reader's own error
    with pytest.raises(WeightsUnavailableError) as info:
        get_extractor("resnet50", weights=bad, device="cpu").load_model()
    assert "\n" not in str(info.value) and "cannot read weights file" in str(info.value)
    assert len(str(info.value)) < 400  # the reader's first sentence, not its essay


class _Evil:
    """Unpickling this writes a marker file: a checkpoint must never run it."""

    marker = None

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_checkpoints_are_never_unpickled(tmp_path):
    from napari_deepseg.core.io.weights import load_state_dict_file

    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": evil}, path)
    with pytest.raises(WeightsUnavailableError):
        load_state_dict_file(path)
    assert not marker.exists()


def test_no_weights_offline_names_the_file(empty_torch_home, no_network):
    ex = get_extractor("resnet50", device="cpu", allow_download=False)
    with pytest.raises(WeightsUnavailableError) as info:
        ex.load_model()
    msg = str(info.value)
    assert RESNET50_FILE in msg
    assert "\n" not in msg
    assert "--weights" in msg and "NAPARI_DEEPSEG_WEIGHTS_DIR" in msg
    assert str(empty_torch_home) in msg
    assert no_network == []


def test_failed_download_is_one_line(empty_torch_home, no_network):
    ex = get_extractor("resnet50", device="cpu", allow_download=True)
    with pytest.raises(WeightsUnavailableError) as info:
        ex.load_model()
    msg = str(info.value)
    assert RESNET50_FILE in msg and "download failed" in msg and "\n" not in msg
    assert no_network == [_resnet50_url()]


def _resnet50_url():
    from torchvision.models import ResNet50_Weights

    return ResNet50_Weights.IMAGENET1K_V2.url


def test_torch_cache_is_reused(empty_torch_home, no_network, random_weights, small_image, reference_features):
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copy(random_weights["pth"], cache / RESNET50_FILE)
    ex = get_extractor("resnet50", device="cpu", allow_download=True, n_components=4096)
    out = ex.extract(as_float_image(small_image)).data
    assert no_network == []
    np.testing.assert_allclose(out, reference_features, rtol=1e-5, atol=1e-5)


def test_weights_dir_override(empty_torch_home, no_network, random_weights, small_image, reference_features,
                              tmp_path, monkeypatch):
    override = tmp_path / "offline-weights"
    override.mkdir()
    shutil.copy(random_weights["pth"], override / RESNET50_FILE)
    # a broken copy in torch's cache proves the override directory comes first
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / RESNET50_FILE).write_bytes(b"broken")
    monkeypatch.setenv("NAPARI_DEEPSEG_WEIGHTS_DIR", str(override))
    ex = get_extractor("resnet50", device="cpu", allow_download=False, n_components=4096)
    out = ex.extract(as_float_image(small_image)).data
    assert no_network == []
    np.testing.assert_allclose(out, reference_features, rtol=1e-5, atol=1e-5)


def test_find_local_weights_order(empty_torch_home, tmp_path, monkeypatch):
    from napari_deepseg.core.io.weights import find_local_weights, torch_cache_dir

    url = _resnet50_url()
    assert torch_cache_dir() == empty_torch_home / "hub" / "checkpoints"
    assert find_local_weights(url) is None
    cache = torch_cache_dir()
    cache.mkdir(parents=True)
    (cache / RESNET50_FILE).write_bytes(b"x")
    assert find_local_weights(url) == cache / RESNET50_FILE
    override = tmp_path / "ov"
    override.mkdir()
    monkeypatch.setenv("NAPARI_DEEPSEG_WEIGHTS_DIR", str(override))
    assert find_local_weights(url) == cache / RESNET50_FILE  # override empty: the cache still serves
    (override / RESNET50_FILE).write_bytes(b"y")
    assert find_local_weights(url) == override / RESNET50_FILE


def test_explicit_file_wins_over_cache(empty_torch_home, no_network, tmp_path):
    """With ``weights=`` given, nothing else is tried (a missing file is an error, not a fallback)."""
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / RESNET50_FILE).write_bytes(b"broken")
    with pytest.raises(WeightsUnavailableError, match="not found"):
        get_extractor("resnet50", weights=tmp_path / "missing.pth", device="cpu").load_model()


def test_state_dict_wrapped_in_checkpoint(tmp_path):
    from napari_deepseg.core.io.weights import load_state_dict_file

    state = torch.nn.Linear(2, 2).state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    loaded = load_state_dict_file(path)
    assert set(loaded) == set(state)
    path2 = tmp_path / "list.pt"
    torch.save([1, 2], path2)
    with pytest.raises(WeightsUnavailableError, match="does not hold a state dict"):
        load_state_dict_file(path2)


# =========================================================================== ResNet-50: max_side
def test_shrink_factor_examples():
    from napari_deepseg.core.features.resnet import shrink_factor

    assert shrink_factor((300, 200), 128) == 3  # ceil(300 / 128)
    assert shrink_factor((200, 300), 128) == 3  # the longer side, whichever axis
    assert shrink_factor((128, 128), 128) == 1
    assert shrink_factor((129, 5), 128) == 2
    assert shrink_factor((2048, 1500), 1024) == 2
    assert shrink_factor((3000, 10), 1024) == 3
    assert shrink_factor((5000, 10), 0) == 1  # 0: never shrink
    assert shrink_factor((1, 1), 1) == 1
    for shape, side in [((300, 200), 128), ((2049, 7), 1024), ((999, 1000), 64)]:
        f = shrink_factor(shape, side)
        assert -(-max(shape) // f) <= side  # fits ...
        assert f == 1 or -(-max(shape) // (f - 1)) > side  # ... and no smaller factor does


def _shrunk(resnet_default, max_side):
    """The loaded default extractor with another max_side (the network is shared, not reloaded)."""
    ex = copy.copy(resnet_default)
    ex.max_side = max_side
    return ex


def test_resnet_max_side_grows_the_stride(resnet_default):
    img, _ = disk_image((300, 200), radius=60, channels=3, seed=4)
    fm = _shrunk(resnet_default, 128).extract(as_float_image(img))
    assert fm.stride == 8 * 3 == 24  # shrunk by 3: 300 x 200 -> 100 x 67 before the network
    assert fm.image_shape == (300, 200)
    # 100 x 67 padded to 128 x 96 -> a 16 x 12 grid at stride 8 of the shrunk image
    assert fm.data.shape == (16, 12, 32)
    assert fm.data.shape[0] * fm.stride >= 300 and fm.data.shape[1] * fm.stride >= 200  # the grid covers the image
    assert np.all(np.isfinite(fm.data))
    assert fm.full_res().shape == (300, 200, 32)


def test_resnet_max_side_zero_and_small_images_keep_stride_8(resnet_default, small_image):
    f = as_float_image(small_image)  # 64 x 96
    assert _shrunk(resnet_default, 0).extract(f).stride == 8
    half = _shrunk(resnet_default, 48).extract(f)
    assert half.stride == 16 and half.image_shape == (64, 96)
    assert half.data.shape == (4, 8, 32)  # 32 x 48 shrunk, padded to 32 x 64, at stride 8


def test_resnet_negative_max_side():
    with pytest.raises(ValueError, match="max_side"):
        get_extractor("resnet50", max_side=-1)


def test_resnet_max_side_is_part_of_the_cache_key(random_weights, small_image):
    from napari_deepseg.core.cut.image import image_key

    a = get_extractor("resnet50", weights=random_weights["pth"], device="cpu")
    b = get_extractor("resnet50", weights=random_weights["pth"], device="cpu", max_side=512)
    assert a.params()["max_side"] == 1024 and b.params()["max_side"] == 512
    assert get_extractor("resnet50", max_side=0).params()["max_side"] == 0
    assert image_key(small_image, "resnet50", a.params()) != image_key(small_image, "resnet50", b.params())
    assert image_key(small_image, "resnet50", a.params()) == image_key(small_image, "resnet50", dict(a.params()))


def test_resnet_multilevel_cut_on_a_shrunk_grid(resnet_default, monkeypatch):
    """Deep features on a large image: the coarse problem sees the same grid at half the stride."""
    from _synthetic import disk_scribbles
    from napari_deepseg.core.cut import bands, pyramid

    img, truth = disk_image((320, 320), radius=90, channels=3, seed=6)
    assert truth.size >= pyramid.MULTILEVEL_MIN_PIXELS
    ses = SegmentationSession(_shrunk(resnet_default, 128))
    entry = ses.set_image(img)
    assert entry.features.stride == 24
    calls = []
    original = bands.refine_band
    monkeypatch.setattr(bands, "refine_band", lambda *a, **k: calls.append(1) or original(*a, **k))
    scrib = disk_scribbles(truth)
    out = ses.segment(scrib)
    assert calls == [1, 1]  # the fine band, once per refit
    assert entry.coarse.features.stride == 12 and entry.coarse.shape == (160, 160)
    assert entry.coarse.features.data is entry.features.data  # the grid is shared, not recomputed
    assert out.shape == truth.shape and set(np.unique(out).tolist()) <= {0, 1}
    assert np.all(out[scrib == 1] == 1) and np.all(out[scrib == 2] == 0)


def test_cli_max_side(tmp_path, capsys, random_weights, no_network, monkeypatch):
    from PIL import Image

    from _synthetic import disk_scribbles
    from napari_deepseg.cli import main
    from napari_deepseg.core.features.resnet import ResNet50Features
    from napari_deepseg.core.io.files import read_labels

    strides = []
    original = ResNet50Features._extract

    def spy(self, *args, **kwargs):
        fm = original(self, *args, **kwargs)
        strides.append((self.max_side, fm.stride))
        return fm

    monkeypatch.setattr(ResNet50Features, "_extract", spy)
    image, truth = disk_image((96, 96), radius=28, channels=3, seed=7)
    scrib = disk_scribbles(truth)
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(scrib).save(tmp_path / "scr.png")
    out = tmp_path / "mask.png"
    argv = ["segment", str(tmp_path / "img.png"), "--scribbles", str(tmp_path / "scr.png"), "-o", str(out),
            "--features", "resnet50", "--weights", str(random_weights["pth"]), "--max-side", "64", "--device", "cpu"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "96x96" in err and "Traceback" not in err
    assert strides == [(64, 16)]  # ceil(96 / 64) = 2: stride 8 * 2
    mask = read_labels(out)
    assert mask.shape == (96, 96) and set(np.unique(mask).tolist()) <= {0, 1}
    assert np.all(mask[scrib == 1] == 1) and np.all(mask[scrib == 2] == 0)
    assert no_network == []
