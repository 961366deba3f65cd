"""Multi-channel images with an explicit channel axis (RGB + near-infrared and the like).

The near-infrared case: a disk with the background's colour in the three visible
bands and a brighter near-infrared band. Without a channel axis the fourth band
is alpha and dropped, so the disk is invisible; with one it is kept and the cut
finds the disk. Deep backbones run with random weights saved to a temporary
folder (never downloaded) and are checked to read exactly the chosen bands.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from _synthetic import disk_image, disk_scribbles, nir_disk_image
from napari_deepseg.cli import main
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.features import get_extractor
from napari_deepseg.core.io.files import read_image, read_labels
from napari_deepseg.core.io.lazy import LazyImage, rgb_channels
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.cut.image import image_key
from napari_deepseg.core.utils.validation import MAX_CHANNELS, channels_last, check_rgb_channels, image_layout


def _band_first(img):
    return np.ascontiguousarray(np.moveaxis(img, -1, 0))


# ============================================================================ channels_last
def test_channels_last_keeps_every_band_and_moves_the_axis():
    img, _ = nir_disk_image((20, 24), dtype=np.uint8)
    out = channels_last(_band_first(img), 0)
    assert out.shape == (20, 24, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)  # uint8 values kept, the 4th band is not alpha
    np.testing.assert_array_equal(channels_last(img, -1), channels_last(img, 2))


def test_channels_last_stretches_each_band_on_its_own():
    img = np.zeros((6, 8, 3), np.uint16)
    img[..., 0] = np.arange(8) * 1000  # 0..7000
    img[..., 1] = 500 + np.arange(8) * 10  # 500..570: a narrow band
    img[..., 2] = 42  # constant
    out = channels_last(img, -1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], np.arange(8) / 7, atol=1e-6)
    np.testing.assert_allclose(out[0, :, 1], np.arange(8) / 7, atol=1e-6)  # a global stretch: 0.07..0.08
    assert not out[..., 2].any()


def test_channels_last_float_bands_in_unit_range_are_kept():
    img = np.zeros((4, 5, 2), np.float32)
    img[..., 0] = 0.25
    img[0, 0, 0] = 0.5
    img[..., 1] = np.linspace(-3, 7, 5)
    out = channels_last(img, 2)
    np.testing.assert_array_equal(out[..., 0], img[..., 0])  # already in [0, 1]: as it is
    np.testing.assert_allclose(out[0, :, 1], np.linspace(0, 1, 5), atol=1e-6)


def test_channels_last_dask_stays_lazy_and_matches_numpy():
    da = pytest.importorskip("dask.array")
    img, _ = nir_disk_image((40, 30), dtype=np.uint16)
    lazy = da.from_array(_band_first(img), chunks=(1, 16, 16))
    out = channels_last(lazy, 0)
    assert isinstance(out, da.Array) and out.shape == (40, 30, 4)
    np.testing.assert_allclose(np.asarray(out), channels_last(img, -1), atol=1e-6)
    zarr = pytest.importorskip("zarr")
    store = zarr.create_array(store={}, shape=(4, 40, 30), chunks=(1, 16, 16), dtype=np.uint16)
    store[:] = _band_first(img)
    out = channels_last(store, 0)  # a zarr array is read through dask, chunk by chunk
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(np.asarray(out), channels_last(img, -1), atol=1e-6)


@pytest.mark.parametrize(
    "image, axis, error, match",
    [
        (np.zeros((8, 8), np.uint8), 0, ValueError, "2-D .* has no channel axis"),
        (np.zeros((2, 8, 8, 3), np.uint8), -1, ValueError, "must be 3-D"),
        (np.zeros((8, 8, 4), np.uint8), 3, ValueError, r"channel_axis must be in -3\.\.2 .* got 3"),
        (np.zeros((8, 8, 4), np.uint8), -4, ValueError, "channel_axis must be in"),
        (np.zeros((8, 8, 4), np.uint8), "last", TypeError, "channel_axis must be an integer"),
        (np.zeros((8, 8, 4), np.uint8), 1.0, TypeError, "channel_axis must be an integer"),
        (np.zeros((8, 8, 4), np.uint8), True, TypeError, "channel_axis must be an integer"),
        (np.zeros((8, 9, 16), np.uint8), 0, ValueError, "8 channels along axis 0 .* 1 to 7"),
        (np.zeros((1, 9, 4), np.uint8), -1, ValueError, "at least 2x2"),
        (np.array([[["a"] * 3] * 3] * 3), -1, TypeError, "must hold numbers"),
        (np.full((4, 4, 2), np.nan, np.float32), -1, ValueError, "32 NaN or infinite"),
    ],
)
def test_channels_last_bad_inputs(image, axis, error, match):
    with pytest.raises(error, match=match):
        channels_last(image, axis)


def test_image_layout_all_channels():
    assert image_layout(np.zeros((4, 5, 4)))[..., :].shape == (4, 5, 3)  # no channel axis: alpha dropped
    assert image_layout(np.zeros((4, 5, 4)), all_channels=True).shape == (4, 5, 4)
    assert image_layout(np.zeros((4, 5, MAX_CHANNELS)), all_channels=True).shape[-1] == MAX_CHANNELS
    with pytest.raises(ValueError, match="1 to 7 channels"):
        image_layout(np.zeros((4, 5, 8)), all_channels=True)


@pytest.mark.parametrize(
    "channels, error, match",
    [((0, 1), ValueError, "three channel indices"), ((0, 1, -2), ValueError, "three channel indices"),
     ("a b c", TypeError, "three channel indices"), (3, TypeError, "three channel indices")],
)
def test_check_rgb_channels_bad_inputs(channels, error, match):
    with pytest.raises(error, match=match):
        check_rgb_channels(channels, "rgb_channels")


def test_rgb_channels_picks_views_and_refuses_missing_bands():
    img, _ = nir_disk_image((8, 9), dtype=np.uint8)
    lazy = LazyImage(img, all_channels=True)
    assert lazy.shape == (8, 9, 4)
    np.testing.assert_array_equal(rgb_channels(lazy).read_all(), img[..., :3] / np.float32(255))
    np.testing.assert_array_equal(rgb_channels(lazy, (3, 3, 0)).read_all(), img[..., [3, 3, 0]] / np.float32(255))
    with pytest.raises(ValueError, match=r"rgb_channels=\(0, 1, 4\) names channel 4 .* 4 channels"):
        rgb_channels(lazy, (0, 1, 4), "rgb_channels")
    with pytest.raises(ValueError, match="2 channels; choose the three"):
        rgb_channels(LazyImage(img[..., :2], all_channels=True))


# ============================================================================ the session
def test_no_channel_axis_keeps_todays_behaviour():
    img, _ = nir_disk_image((30, 40), dtype=np.uint8)
    session = SegmentationSession("classic")
    entry = session.set_image(img)
    assert entry.palette.colours.shape[1] == 3  # a 4th channel without an axis is alpha
    assert entry.key == image_key(img[..., :3], "classic", session.extractor.params())


def test_channel_axis_changes_the_key_and_keeps_four_bands():
    img, _ = nir_disk_image((30, 40), dtype=np.uint16)
    session = SegmentationSession("classic", cache_size=4)
    plain = session.set_image(img[..., :3]).key
    explicit = session.set_image(img[..., :3], channel_axis=-1).key  # per-band stretch: another image
    four = session.set_image(img, channel_axis=-1)
    assert len({plain, explicit, four.key}) == 3
    assert four.palette.colours.shape[1] == 4 and four.lab.shape[1] == 4
    assert session.set_image(img, channel_axis=2) is not four  # the channel choice is part of the key


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("band_first", [False, True])
def test_nir_band_finds_an_object_invisible_in_rgb_default_preset(dtype, band_first):
    img, truth = nir_disk_image((64, 80), dtype=dtype)
    scribbles = disk_scribbles(truth)
    session = SegmentationSession("classic")
    session.set_image(img)  # alpha dropped: the disk is invisible
    blind = iou(session.segment(scribbles) == 1, truth)
    data, axis = (_band_first(img), 0) if band_first else (img, -1)
    session.set_image(data, channel_axis=axis)
    seen = iou(session.segment(scribbles) == 1, truth)
    assert blind < 0.7 and seen > 0.95, (blind, seen)


def test_nir_band_default_preset_coarse_to_fine():
    img, truth = nir_disk_image((400, 400), dtype=np.uint16)
    session = SegmentationSession("classic")
    session.set_image(img, channel_axis=-1)
    mask = session.segment(disk_scribbles(truth), multilevel=True)
    assert iou(mask == 1, truth) > 0.95


@pytest.mark.parametrize("backbone", ["classic", "rgb"])
def test_nir_band_seed_preset(backbone):
    img, truth = nir_disk_image((64, 80), dtype=np.uint16)
    scribbles = disk_scribbles(truth)
    session = SegmentationSession(backbone)
    session.set_image(img)
    blind = iou(session.segment(scribbles, preset="seed") == 1, truth)
    entry = session.set_image(img, channel_axis=-1)
    seen = iou(session.segment(scribbles, preset="seed") == 1, truth)
    assert entry.features.data.shape[:2] == (64, 80)
    assert blind < 0.7 and seen > 0.85, (blind, seen)


def test_weight_free_features_read_every_band():
    img, _ = nir_disk_image((32, 36), dtype=np.uint8)
    session = SegmentationSession("rgb")
    feats = session.set_image(img, channel_axis=-1).features.data
    np.testing.assert_allclose(feats, img / np.float32(255), atol=1e-6)
    classic = get_extractor("classic", sigmas=(1.0,))
    base = classic.extract(LazyImage(channels_last(img, -1), all_channels=True)).data
    assert base.shape[-1] == 14  # 4 bands + 4 smoothed + 6 texture channels of the mean band
    changed = img.copy()
    changed[8:20, 8:20, 3] = 255  # only the NIR band differs
    other = classic.extract(LazyImage(channels_last(changed, -1), all_channels=True)).data
    assert np.abs(other - base)[10:18, 10:18].max() > 0.5


def test_dask_image_with_channel_axis_in_the_session():
    da = pytest.importorskip("dask.array")
    img, truth = nir_disk_image((64, 80), dtype=np.uint16)
    lazy = da.from_array(_band_first(img), chunks=(4, 32, 32))
    session = SegmentationSession("classic")
    session.set_image(lazy, channel_axis=0)
    assert iou(session.segment(disk_scribbles(truth)) == 1, truth) > 0.95


# ============================================================================ deep backbones
@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """A randomly initialised resnet50 state dict in a temporary file (never downloaded)."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random-resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random 2-layer CLIP vision model (hidden 32, patch 8) in a folder."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(folder)
    return str(folder)


def _tiny_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5),
    )


def _deep(name, resnet_weights, tiny_clip, **kw):
    if name == "resnet50":
        return get_extractor("resnet50", weights=resnet_weights, device="cpu", layers="layer1", n_components=256, **kw)
    if name == "clip":
        return get_extractor("clip", weights=tiny_clip, device="cpu", resolution=64, n_components=0, **kw)
    return get_extractor("saliency", network=_tiny_cnn(), base="rgb", class_index=1, device="cpu", **kw)


@pytest.mark.parametrize("name", ["resnet50", "clip", "saliency"])
def test_deep_backbones_read_the_chosen_bands(name, resnet_weights, tiny_clip):
    img, _ = nir_disk_image((48, 56), dtype=np.uint16, seed=2)
    four = LazyImage(channels_last(img, -1), all_channels=True)
    picked = _deep(name, resnet_weights, tiny_clip, rgb_channels=(3, 0, 1))
    assert picked.params()["rgb_channels"] == (3, 0, 1)
    assert "rgb_channels" not in _deep(name, resnet_weights, tiny_clip).params()  # default: keys unchanged
    got = picked.extract(four).data
    want = _deep(name, resnet_weights, tiny_clip).extract(LazyImage(channels_last(img[..., [3, 0, 1]], -1))).data
    if name == "saliency":  # the saliency channel comes from the picked bands, the rgb base from all four
        z = [g[..., 0] / g[..., 0].std() for g in (got, want)]  # its scale follows the base's spread
        np.testing.assert_allclose(z[0], z[1], rtol=1e-3, atol=1e-3)
        assert got.shape[-1] == 5 and want.shape[-1] == 4
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    first = _deep(name, resnet_weights, tiny_clip).extract(four).data  # default: the first three bands
    rgb = _deep(name, resnet_weights, tiny_clip).extract(LazyImage(channels_last(img[..., :3], -1))).data
    k = 1 if name == "saliency" else first.shape[-1]  # saliency: its channel (the base reads all bands)
    z = [f[..., :k] / f[..., :k].std() for f in (first, rgb, got)]
    np.testing.assert_allclose(z[0], z[1], rtol=1e-3, atol=1e-3)
    assert not np.allclose(z[0], z[2], atol=1e-2)


def test_resnet_session_rgb_channels_key_and_bad_index(resnet_weights):
    img, _ = nir_disk_image((48, 56), dtype=np.uint16)
    a = SegmentationSession("resnet50", weights=resnet_weights, device="cpu", layers="layer1", n_components=4)
    b = SegmentationSession("resnet50", weights=resnet_weights, device="cpu", layers="layer1", n_components=4,
                            rgb_channels=(3, 0, 1))
    assert a.set_image(img, channel_axis=-1).key != b.set_image(img, channel_axis=-1).key
    bad = SegmentationSession("resnet50", weights=resnet_weights, device="cpu", layers="layer1",
                              rgb_channels=(0, 1, 5))
    with pytest.raises(ValueError, match=r"rgb_channels=\(0, 1, 5\) names channel 5 but the image has 4"):
        bad.set_image(img, channel_axis=-1)
    with pytest.raises(ValueError, match="rgb_channels must be three"):
        SegmentationSession("resnet50", weights=resnet_weights, rgb_channels=(0, 1))


# ============================================================================ files and the CLI
@pytest.mark.parametrize("planar", [False, True])
def test_read_image_keeps_four_tiff_bands(tmp_path, planar):
    img, _ = nir_disk_image((20, 24), dtype=np.uint16)
    path = tmp_path / "tile.tif"
    tifffile.imwrite(path, _band_first(img) if planar else img, photometric="minisblack")
    got = read_image(path)
    np.testing.assert_array_equal(got, _band_first(img) if planar else img)


def test_cli_segment_channel_axis(tmp_path, capsys, resnet_weights):
    img, truth = nir_disk_image((64, 80), dtype=np.uint16)
    path, scr = tmp_path / "tile.tif", tmp_path / "scribbles.png"
    tifffile.imwrite(path, _band_first(img), photometric="minisblack")  # bands first, as GDAL writes them
    from PIL import Image

    Image.fromarray(disk_scribbles(truth)).save(scr)
    out = tmp_path / "mask.png"
    assert main(["segment", str(path), "--scribbles", str(scr), "-o", str(out), "--channel-axis", "0", "-q"]) == 0
    assert iou(read_labels(out) == 1, truth) > 0.95
    # deep backbone with picked bands runs end to end (random weights: no quality claim)
    assert main(["segment", str(path), "--scribbles", str(scr), "-o", str(out), "--channel-axis", "0", "-q",
                 "--features", "resnet50", "--weights", str(resnet_weights), "--layers", "layer1",
                 "--device", "cpu", "--rgb-channels", "3", "0", "1"]) == 0
    assert read_labels(out).shape == (64, 80)
    capsys.readouterr()
    for extra, message in [
        (["--channel-axis", "3"], "channel_axis must be in -3..2"),
        (["--channel-axis", "1"], "64 channels along axis 1"),
        (["--channel-axis", "0", "--rgb-channels", "0", "1", "2"], "--rgb-channels is only used by pretrained"),
        (["--channel-axis", "0", "--features", "resnet50", "--weights", str(resnet_weights),
          "--rgb-channels", "0", "1", "7"], "names channel 7 but the image has 4"),
    ]:
        assert main(["segment", str(path), "--scribbles", str(scr), "-o", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0, err


def test_cli_rgb_image_unchanged_without_channel_axis(tmp_path):
    img, truth = disk_image((48, 56), channels=4)
    path, scr, out = tmp_path / "rgba.tif", tmp_path / "s.png", tmp_path / "m.png"
    tifffile.imwrite(path, img)
    from PIL import Image

    Image.fromarray(disk_scribbles(truth)).save(scr)
    assert main(["segment", str(path), "--scribbles", str(scr), "-o", str(out), "-q"]) == 0
    assert iou(read_labels(out) == 1, truth) > 0.9
