"""Tiled features and lazy inputs (issue 5, "Any size").

Every backbone reads its image tile by tile (``core/io/lazy.py``): tiled features
equal untiled ones (no seams), progress is reported per tile, cancel is checked
between tiles, and a dask or zarr image is never read whole. ResNet-50 and CLIP
are randomly initialised and saved to a temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from _synthetic import disk_image
from napari_deepseg.core import SegmentationSession, get_extractor
from napari_deepseg.core.features import clip as clip_module
from napari_deepseg.core.features import resnet as resnet_module
from napari_deepseg.core.io.lazy import LazyImage, read_region, value_range
from napari_deepseg.core.utils.progress import CancelToken, Cancelled
from napari_deepseg.core.utils.validation import as_float_image

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")


class Recording:
    """An array-like (shape, dtype, slicing) that records the pixels of every read; no ``__array__``."""

    def __init__(self, base):
        self.base = base
        self.shape, self.dtype = tuple(base.shape), np.dtype(base.dtype)
        self.reads = []

    def __getitem__(self, key):
        out = np.asarray(self.base[key])
        self.reads.append(int(out.shape[0] * out.shape[1]) if out.ndim >= 2 else int(out.size))
        return out

    @property
    def largest_fraction(self) -> float:
        return max(self.reads) / (self.shape[0] * self.shape[1])


def _image(shape=(150, 130), channels=3, seed=5):
    img, truth = disk_image(shape, channels=channels, seed=seed)
    return img, truth


def _cell_error(a, b):
    scale = np.linalg.norm(b - b.mean((0, 1)), axis=-1).mean()
    return float((np.linalg.norm(a - b, axis=-1) / scale).max())


def _cancel_after(n):
    """A progress callback that cancels its token after ``n`` reports."""
    token, seen = CancelToken(), []

    def progress(done, total, message):
        seen.append((done, total, message))
        if len(seen) >= n:
            token.cancel()

    return token, progress, seen


# ============================================================================ core/io/lazy.py
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64, bool])
@pytest.mark.parametrize("shape", [(23, 31), (23, 31, 1), (23, 31, 3), (23, 31, 4)])
def test_read_region_equals_a_crop_of_as_float_image(dtype, shape):
    rng = np.random.default_rng(1)
    a = (rng.random(shape) * (1.0 if np.dtype(dtype).kind == "f" else 900)).astype(dtype)
    ref = as_float_image(a)
    np.testing.assert_array_equal(read_region(a, slice(3, 17), slice(5, 30)), ref[3:17, 5:30])
    lazy = LazyImage(da.from_array(a, chunks=(8, 8) + a.shape[2:]))
    np.testing.assert_array_equal(lazy.read_all(), ref)
    assert lazy.shape == ref.shape


@pytest.mark.parametrize("mode", ["reflect", "edge"])
def test_read_padded_equals_numpy_pad(mode):
    a = np.random.default_rng(2).random((19, 27, 3)).astype(np.float32)
    img = LazyImage(a)
    padded = np.pad(a, ((7, 25), (4, 30), (0, 0)), mode=mode)
    np.testing.assert_array_equal(img.read_padded(-7, 19 + 25, -4, 27 + 30, mode), padded)
    np.testing.assert_array_equal(img.read_padded(10, 40, 20, 50, mode), padded[17:47, 24:54])


@pytest.mark.parametrize("factor", [2, 3, 7])
def test_block_mean_equals_downscale_local_mean(factor):
    from skimage.transform import downscale_local_mean

    a = np.random.default_rng(3).random((41, 53, 3)).astype(np.float32)
    even = np.pad(a, ((0, -41 % factor), (0, -53 % factor), (0, 0)), mode="edge")
    np.testing.assert_allclose(LazyImage(a).block_mean(factor), downscale_local_mean(even, (factor, factor, 1)),
                               atol=1e-6)


def test_value_range_is_read_in_strips(monkeypatch):
    monkeypatch.setattr("napari_deepseg.core.io.lazy.STRIP_PIXELS", 100)
    a = Recording(np.arange(60 * 50, dtype=np.uint16).reshape(60, 50))
    assert value_range(a) == (0.0, 2999.0)
    assert a.largest_fraction <= 100 / 3000


def test_lazy_bad_inputs():
    with pytest.raises(ValueError, match="must be 2-D grayscale"):
        LazyImage(np.zeros((4, 5, 6)))
    with pytest.raises(TypeError, match="must hold numbers"):
        LazyImage(np.array([["a", "b"], ["c", "d"]]))
    bad = np.zeros((4, 5), np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite values"):
        LazyImage(bad).read(slice(0, 2), slice(0, 2))
    with pytest.raises(ValueError, match="mode must be 'reflect' or 'edge', got 'wrap'"):
        LazyImage(np.zeros((4, 5))).read_padded(0, 6, 0, 5, "wrap")


# ============================================================================ classic and rgb in strips
@pytest.mark.parametrize("sigmas", [(1.0, 2.0, 4.0), (1.0, 2.0, 4.0, 8.0)])
def test_classic_strips_equal_the_whole_image(sigmas):
    img, _ = _image()
    whole = get_extractor("classic", sigmas=sigmas).extract(img).data
    strips = get_extractor("classic", sigmas=sigmas)
    strips.strip_pixels = 130 * 6  # 25 strips of 6 rows, each with a halo of up to 36 rows
    seen = []
    tiled = strips.extract(img, progress=lambda d, t, m: seen.append((d, t, m))).data
    assert tiled.shape == whole.shape
    assert seen[-1][:2] == (25, 25) and sum("strip" in m for _, _, m in seen) == 25
    # no seams: z-scored channels agree to float rounding (PCA case: up to its fitted axes' rounding)
    assert np.abs(tiled - whole).max() < (1e-3 if len(sigmas) == 3 else 2e-2)


def test_classic_cancel_between_strips():
    img, _ = _image()
    ex = get_extractor("classic")
    ex.strip_pixels = 130 * 10
    token, progress, seen = _cancel_after(3)
    with pytest.raises(Cancelled):
        ex.extract(img, progress=progress, cancel=token)
    assert len(seen) == 3  # stopped at the next strip


def test_rgb_strips(monkeypatch):
    monkeypatch.setattr("napari_deepseg.core.features.simple.STRIP_PIXELS", 130 * 40)
    img, _ = _image()
    seen = []
    fm = get_extractor("rgb").extract(img, progress=lambda d, t, m: seen.append((d, t)))
    np.testing.assert_array_equal(fm.data, as_float_image(img))
    assert seen[-1] == (4, 4)


# ============================================================================ CLIP: resized strip by strip
@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random 2-layer CLIP vision model (hidden 32, patch 8) saved to a folder."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("shape, patch, resolution", [((150, 130), 8, 64), ((150, 130), 32, 448), ((9, 7), 8, 64)])
def test_clip_input_strips_equal_resizing_the_whole_image(monkeypatch, shape, patch, resolution):
    import torch.nn.functional as F

    img, _ = _image(shape) if min(shape) > 10 else (np.random.default_rng(0).random(shape + (3,)), None)
    x = as_float_image(img)
    stride, gr, gc = clip_module.grid_layout(shape, patch, resolution)
    padded = np.pad(x, ((0, gr * stride - shape[0]), (0, gc * stride - shape[1]), (0, 0)), mode="edge")
    ref = F.interpolate(torch.from_numpy(padded).permute(2, 0, 1)[None], size=(gr * patch, gc * patch),
                        mode="bilinear", align_corners=False, antialias=True)
    monkeypatch.setattr(clip_module, "STRIP_PIXELS", 1)  # 4 grid rows per strip
    seen = []
    out = clip_module.network_input(LazyImage(img), stride, (gr, gc), patch, lambda d, t, m: seen.append(d))
    assert len(seen) == -(-gr // 4)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5)


def test_clip_features_of_dask_and_zarr_images(tiny_clip, monkeypatch, tmp_path):
    monkeypatch.setattr(clip_module, "STRIP_PIXELS", 1)
    img, _ = _image()
    ex = get_extractor("clip", weights=tiny_clip, resolution=64, n_components=0, device="cpu")
    ref = ex.extract(img).data
    for base in (da.from_array(img, chunks=(40, 40, 3)), _zarr_array(img, tmp_path / "clip.zarr")):
        rec = Recording(base)
        np.testing.assert_allclose(ex.extract(rec).data, ref, atol=1e-5)
        assert rec.largest_fraction < 0.7


# ============================================================================ ResNet-50 (random weights)
@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """The default hypercolumn (layer2,layer3) with random weights loaded through the real path."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random-resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    ex = get_extractor("resnet50", weights=path, device="cpu", max_side=0)
    ex.load_model()
    return ex


def test_resnet_streamed_pca_tiled_equals_untiled(resnet, monkeypatch):
    """Above max_grid_bytes every tile is projected as it comes out; the axes come from seeded
    sample windows that do not depend on the tiling, so tile=128 equals one tile."""
    monkeypatch.setattr(resnet_module, "MAX_SAMPLE_WINDOWS", 3)  # a small image: fewer (overlapping) windows
    img, truth = _image((200, 260))
    x = as_float_image(img)
    whole = copy.copy(resnet)
    whole.max_grid_bytes, whole.tile = 1, 1024
    seen = []
    ref = whole.extract(x, progress=lambda d, t, m: seen.append((d, t, m))).data
    windows = len(whole.sample_windows((224, 288)))
    assert seen[-1][:2] == (windows + 1, windows + 1)
    assert sum("sample window" in m for _, _, m in seen) == windows
    tiled = copy.copy(whole)
    tiled.tile = 128
    seen = []
    out = tiled.extract(x, progress=lambda d, t, m: seen.append((d, t))).data
    assert windows == 3 and seen[-1] == (windows + 6, windows + 6)  # 2 x 3 tiles of 128 px (224 x 288 padded)
    assert out.shape == ref.shape == (28, 36, 32)
    assert _cell_error(out, ref) < 2e-2
    # the projection keeps what tells the disk from the background
    cells = truth[4::8, 4::8]
    inside, outside = out[:25, :32][cells].mean(0), out[:25, :32][~cells].mean(0)
    assert np.linalg.norm(inside - outside) > 0.5 * np.linalg.norm(out.std((0, 1)))


def test_resnet_streamed_pca_cancel_between_tiles(resnet):
    ex = copy.copy(resnet)
    ex.max_grid_bytes, ex.tile = 1, 64
    token, progress, seen = _cancel_after(2)
    with pytest.raises(Cancelled):
        ex.extract(_image()[0], progress=progress, cancel=token)
    assert len(seen) == 2


def test_resnet_whole_grid_mode_is_unchanged_below_the_budget(resnet):
    """Small grids keep the PCA fitted on random cells of the whole grid (as before tiling)."""
    from napari_deepseg.core.features.compress import pca_compress

    img, _ = _image((64, 96))
    raw = copy.copy(resnet)
    raw.n_components = 4096
    grid = raw.extract(img).data + 0  # centred only
    ex = copy.copy(resnet)
    np.testing.assert_allclose(ex.extract(img).data, pca_compress(grid, 32, max_samples=8_000), atol=1e-3)


def _zarr_array(img, path):
    arr = zarr.open_array(str(path), mode="w", shape=img.shape, chunks=(40, 40) + img.shape[2:], dtype=img.dtype)
    arr[...] = img
    return zarr.open_array(str(path), mode="r")


@pytest.mark.parametrize("kind", ["dask", "zarr"])
@pytest.mark.parametrize("max_side", [0, 64])
def test_resnet_lazy_inputs_are_read_tile_by_tile(resnet, kind, max_side, tmp_path, monkeypatch):
    monkeypatch.setattr("napari_deepseg.core.io.lazy.STRIP_PIXELS", 130 * 20)
    img, _ = _image((300, 260))
    ex = copy.copy(resnet)
    ex.tile, ex.halo, ex.max_side = 64, 32, max_side
    ref = ex.extract(img)
    base = da.from_array(img, chunks=(40, 40, 3)) if kind == "dask" else _zarr_array(img, tmp_path / "i.zarr")
    rec = Recording(base)
    fm = ex.extract(rec)
    assert (fm.stride, fm.image_shape) == (ref.stride, ref.image_shape)
    np.testing.assert_allclose(fm.data, ref.data, atol=1e-4)
    assert rec.largest_fraction < 0.9, f"a read covered {rec.largest_fraction:.0%} of the image"


@pytest.mark.parametrize("backbone", ["classic", "rgb"])
def test_weight_free_lazy_inputs_are_read_in_strips(backbone, tmp_path, monkeypatch):
    monkeypatch.setattr("napari_deepseg.core.io.lazy.STRIP_PIXELS", 130 * 20)
    monkeypatch.setattr("napari_deepseg.core.features.simple.STRIP_PIXELS", 130 * 20)
    img = _image()[0].astype(np.uint16) * 7  # stretched by its minimum and maximum, found strip by strip
    ex = get_extractor(backbone)
    ex.strip_pixels = 130 * 20
    ref = ex.extract(img).data
    for base in (da.from_array(img, chunks=(40, 40, 3)), _zarr_array(img, tmp_path / f"{backbone}.zarr")):
        rec = Recording(base)
        np.testing.assert_allclose(ex.extract(rec).data, ref, atol=1e-4)
        assert rec.largest_fraction < 0.5


def test_saliency_backbone_reads_tiles(monkeypatch):
    from test_saliency import tiny_cnn

    monkeypatch.setattr("napari_deepseg.core.io.lazy.STRIP_PIXELS", 130 * 20)
    monkeypatch.setattr("napari_deepseg.core.features.simple.STRIP_PIXELS", 130 * 20)
    img, _ = _image((300, 260))
    ex = get_extractor("saliency", base="rgb", network=tiny_cnn(), tile=128)
    ref = ex.extract(img).data
    rec = Recording(da.from_array(img, chunks=(40, 40, 3)))
    np.testing.assert_allclose(ex.extract(rec).data, ref, atol=1e-5)
    assert rec.largest_fraction < 0.5


def test_session_never_reads_a_lazy_image_whole(resnet, monkeypatch):
    """set_image with a dask array: hashing, palette and resnet50 features all read parts."""
    monkeypatch.setattr("napari_deepseg.core.io.lazy.STRIP_PIXELS", 260 * 20)
    monkeypatch.setattr("napari_deepseg.core.cut.palette.STRIP_PIXELS", 260 * 20)
    img, truth = _image((300, 260))
    rec = Recording(da.from_array(img, chunks=(40, 40, 3)))
    ex = copy.copy(resnet)
    ex.tile, ex.halo = 64, 32
    session = SegmentationSession(ex)
    session.set_image(rec)
    assert rec.largest_fraction < 0.5
    seeds = np.zeros(truth.shape, np.uint8)
    seeds[145:155, 125:135] = 1
    seeds[:3] = 2
    assert session.segment(seeds, multilevel=False)[150, 130] == 1
