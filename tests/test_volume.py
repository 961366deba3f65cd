"""Volumes and stacks (issue 5): the 3-D cut, anisotropic spacing, the per-plane mode, coarse to fine, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.cli import main
from napari_deepseg.core.cut import volume as volume_module
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.cut.volume import VolumeSession, _Level, _lam_axes, block_sum3, check_spacing

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def sphere(shape=(24, 48, 48), seed=0, noise=20.0):
    """A bright noisy ellipsoid in a darker noisy volume, uint8, and its truth."""
    rng = np.random.default_rng(seed)
    p, r, c = shape
    z, y, x = np.ogrid[:p, :r, :c]
    truth = ((z - p / 2) / (p * 0.3)) ** 2 + ((y - r / 2) / (r * 0.3)) ** 2 + ((x - c / 2) / (c * 0.3)) ** 2 <= 1
    vol = np.clip(np.where(truth, 150, 80) + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    return vol, truth


def one_plane_scribbles(shape, plane=None):
    """Object and background strokes on a single plane only."""
    p, r, c = shape
    plane = p // 2 if plane is None else plane
    s = np.zeros(shape, np.uint8)
    s[plane, r // 2 - 2 : r // 2 + 2, c // 2 - c // 6 : c // 2 + c // 6] = 1
    s[plane, 1:3, :] = 2
    s[plane, :, 1:3] = 2
    return s


def test_strokes_on_one_plane_segment_the_whole_ellipsoid():
    vol, truth = sphere()
    ses = VolumeSession()
    ses.set_image(vol)
    out = ses.segment(one_plane_scribbles(vol.shape))
    assert out.shape == vol.shape and out.dtype == np.uint8
    assert iou(out == 1, truth) > 0.95
    assert out[2:-2].any(axis=(1, 2)).sum() >= truth.any(axis=(1, 2)).sum() - 4  # far planes too


def test_planes_mode_cuts_each_plane_alone():
    vol, truth = sphere()
    ses = VolumeSession()
    ses.set_image(vol)
    scr = one_plane_scribbles(vol.shape)
    planes = ses.segment(scr, mode="planes")
    assert iou(planes == 1, truth) > 0.9  # the shared appearance model labels the other planes
    # one plane alone is exactly what a single-plane volume gives with the same appearance model
    mid = vol.shape[0] // 2
    assert iou(planes[mid] == 1, truth[mid]) > 0.95
    with pytest.raises(ValueError, match="mode must be one of"):
        ses.segment(scr, mode="4d")


def test_spacing_scales_the_edges_between_planes():
    assert _lam_axes((2.0, 1.0, 1.0), 20.0, "3d") == (10.0, 20.0, 20.0)
    assert _lam_axes((1.0, 0.5, 0.5), 20.0, "3d") == (10.0, 20.0, 20.0)
    assert _lam_axes((1.0, 1.0, 1.0), 20.0, "planes")[0] == 0.0
    level = _Level((2, 2, 2), np.zeros((2, 2, 2, 1), np.float32), sigma=1.0)
    assert float(level.weights(0, np.array([0]), 10.0)[0]) == pytest.approx(10.0)


def test_spacing_between_planes_weighs_their_ties():
    """Planes far apart (huge z spacing) are cut as in the per-plane mode; close ones are tied together."""
    vol, _ = sphere((10, 32, 32), seed=2, noise=45.0)
    scr = one_plane_scribbles(vol.shape)
    ses = VolumeSession()
    ses.set_image(vol, spacing=(1e6, 1, 1))
    far = ses.segment(scr)
    planes = ses.segment(scr, mode="planes")
    # the same cut, less the specks the per-plane mode drops from planes without strokes
    np.testing.assert_array_equal(volume_module.remove_specks(far.astype(bool), scr), planes.astype(bool))
    ses.set_image(vol, spacing=(1, 1, 1))
    tied = ses.segment(scr)
    assert np.count_nonzero(tied != planes) > 0


def test_coarse_to_fine_matches_the_single_level_cut(monkeypatch):
    vol, truth = sphere((32, 64, 64), seed=3)
    monkeypatch.setattr(volume_module, "COARSEST_VOXELS", 5_000)  # 32x64x64 -> 16x32x32 -> 8x16x16
    ses = VolumeSession()
    ses.set_image(vol, spacing=(2, 1, 1))
    scr = one_plane_scribbles(vol.shape)
    multi = ses.segment(scr, multilevel=True)
    single = ses.segment(scr, multilevel=False)
    assert len(ses._current.levels) == 3
    assert iou(multi == 1, single == 1) >= 0.99
    assert iou(multi == 1, truth) > 0.95


def test_block_sum3():
    a = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    out = block_sum3(a)
    assert out.shape == (2, 2, 2)
    assert float(out[0, 0, 0]) == float(a[:2, :2, :2].sum())
    assert float(out.sum()) > float(a.sum())  # the edge-padded borders count twice


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 5)), "planes, rows, cols"),
    (np.zeros((1, 5, 5)), "at least 2x2x2"),
    (np.zeros((3, 4, 5), dtype=object), "numbers"),
])
def test_bad_volumes(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        VolumeSession().set_image(bad)


def test_bad_scribbles_and_spacing():
    vol, _ = sphere((6, 16, 16))
    ses = VolumeSession()
    with pytest.raises(RuntimeError, match="no volume set"):
        ses.segment(np.zeros(vol.shape, np.uint8))
    ses.set_image(vol)
    with pytest.raises(ValueError, match="shape"):
        ses.segment(np.zeros((6, 16, 15), np.uint8))
    only_fg = np.zeros(vol.shape, np.uint8)
    only_fg[3, 8, 8] = 1
    with pytest.raises(ValueError, match="both labels"):
        ses.segment(only_fg)
    three = one_plane_scribbles(vol.shape)
    three[0, 0, 0] = 3
    with pytest.raises(ValueError, match="1 .object. and 2"):
        ses.segment(three)
    for spacing in [(1, 1), (0, 1, 1), (1, -2, 1), ("a", 1, 1)]:
        with pytest.raises(ValueError, match="spacing"):
            check_spacing(spacing)


def test_cli_segments_a_tiff_stack(tmp_path, capsys):
    import tifffile

    vol, truth = sphere((16, 40, 40), seed=5)
    tifffile.imwrite(tmp_path / "vol.tif", vol)
    tifffile.imwrite(tmp_path / "scr.tif", one_plane_scribbles(vol.shape))
    out = tmp_path / "mask.tif"
    assert main(["segment", str(tmp_path / "vol.tif"), "--scribbles", str(tmp_path / "scr.tif"), "-o", str(out),
                 "--spacing", "2", "1", "1"]) == 0
    mask = tifffile.imread(out)
    assert mask.shape == vol.shape and iou(mask == 1, truth) > 0.9
    assert "16x40x40 volume (3d)" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "vol.tif"), "--scribbles", str(tmp_path / "scr.tif"), "-o",
                 str(tmp_path / "planes.tif"), "--mode", "planes", "-q"]) == 0
    # a 3-D result cannot be a PNG; --spacing means nothing for a 2-D image
    assert main(["segment", str(tmp_path / "vol.tif"), "--scribbles", str(tmp_path / "scr.tif"), "-o",
                 str(tmp_path / "m.png")]) == 2
    assert "TIFF" in capsys.readouterr().err


def jumping_disk_stack(shape=(12, 64, 64), seed=0):
    """A time series whose disk jumps left/right between consecutive planes, uint8, and its truth."""
    rng = np.random.default_rng(seed)
    p, r, c = shape
    y, x = np.ogrid[:r, :c]
    truth = np.zeros(shape, bool)
    for z in range(p):
        cx = c * (0.27 if z % 2 == 0 else 0.73)
        truth[z] = (y - r / 2) ** 2 + (x - cx) ** 2 <= (c * 0.12) ** 2
    vol = np.clip(np.where(truth, 150, 80) + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
    return vol, truth


def test_planes_mode_coarse_to_fine_never_merges_planes(monkeypatch):
    """Halving z would average a plane with its neighbour: a disk that moves between planes would vanish."""
    vol, truth = jumping_disk_stack()
    monkeypatch.setattr(volume_module, "COARSEST_VOXELS", 5_000)  # 12x64x64 -> 12x32x32 -> 12x16x16
    scr = np.zeros(vol.shape, np.uint8)
    for z in (4, 5):
        cx = int(vol.shape[2] * (0.27 if z % 2 == 0 else 0.73))
        scr[z, 31:33, cx - 3 : cx + 3] = 1
        scr[z, 1:3, :] = 2
    ses = VolumeSession()
    ses.set_image(vol)
    multi = ses.segment(scr, mode="planes", multilevel=True)
    assert [lv.factors for lv in ses._current.plane_levels[1:]] == [(1, 2, 2), (1, 2, 2)]
    single = ses.segment(scr, mode="planes", multilevel=False)
    per_plane = [iou(multi[z] == 1, truth[z]) for z in range(vol.shape[0])]
    assert min(per_plane) > 0.9, per_plane
    assert iou(multi == 1, single == 1) > 0.97


def test_block_factors_and_lambda_per_level():
    assert volume_module.block_factors((64, 64, 64), planes=False) == (2, 2, 2)
    assert volume_module.block_factors((64, 64, 64), planes=True) == (1, 2, 2)
    assert volume_module.block_factors((5, 64, 64), planes=False) == (1, 2, 2)  # few planes: in-plane only
    assert volume_module._lam_scale((2, 2, 2)) == (4.0, 4.0, 4.0)
    assert volume_module._lam_scale((1, 2, 2)) == (4.0, 2.0, 2.0)
    assert block_sum3(np.ones((3, 4, 5), np.float32), (1, 2, 2)).shape == (3, 2, 3)


def test_sigma_given_once_does_not_stick():
    vol, _ = sphere((8, 24, 24), seed=4)
    ses = VolumeSession()
    ses.set_image(vol)
    scr = one_plane_scribbles(vol.shape)
    ses.segment(scr)
    auto = ses._current.levels[0].sigma
    ses.segment(scr, sigma=0.5)
    assert ses._current.levels[0].sigma == 0.5
    ses.segment(scr)
    assert ses._current.levels[0].sigma == pytest.approx(auto)


def test_a_stack_of_two_big_planes_is_cut_coarse_to_fine(monkeypatch):
    vol, truth = jumping_disk_stack((2, 64, 64), seed=6)
    monkeypatch.setattr(volume_module, "COARSEST_VOXELS", 1_000)
    scr = np.zeros(vol.shape, np.uint8)
    scr[0, 31:33, 14:20] = 1
    scr[:, 1:3, :] = 2
    ses = VolumeSession()
    ses.set_image(vol)
    out = ses.segment(scr, multilevel=True)
    assert [lv.factors for lv in ses._current.levels[1:]] == [(1, 2, 2), (1, 2, 2)]  # 2x64x64 -> 2x16x16
    assert iou(out[0] == 1, truth[0]) > 0.9


@pytest.mark.parametrize("kind", ["dask", "zarr"])
def test_lazy_volumes_give_the_numpy_result(kind):
    vol, _ = sphere((8, 32, 32), seed=7)
    scr = one_plane_scribbles(vol.shape)
    if kind == "dask":
        da = pytest.importorskip("dask.array")
        lazy = da.from_array(vol, chunks=(2, 16, 32))
    else:
        zarr = pytest.importorskip("zarr")
        lazy = zarr.zeros(vol.shape, chunks=(2, 16, 32), dtype=vol.dtype)
        lazy[:] = vol
    expected = VolumeSession()
    expected.set_image(vol)
    ses = VolumeSession()
    ses.set_image(lazy)
    np.testing.assert_array_equal(ses.segment(scr), expected.segment(scr))


def test_planes_without_strokes_get_no_specks():
    """Per-plane mode: planes nobody painted keep their object, not 4-10 pixel specks of similar colour."""
    from napari_deepseg.core.cut.volume import VolumeSession

    rng = np.random.default_rng(1)
    vol = (rng.random((6, 80, 80)) * 60).astype(np.uint8)
    vol[:, 25:55, 25:55] = 200  # the object on every plane
    specks = rng.random((6, 80, 80)) < 0.004  # single bright pixels in the background
    vol[specks & (vol < 100)] = 200
    scr = np.zeros(vol.shape, np.uint8)
    scr[0, 35:45, 35:45] = 1
    scr[0, 2:6, :] = 2
    scr[0, :, 2:6] = 2
    session = VolumeSession()
    session.set_image(vol)
    out = session.segment(scr, mode="planes")
    from scipy import ndimage as ndi

    for z in range(1, 6):  # no strokes there
        islands, n = ndi.label(out[z])
        sizes = np.bincount(islands.ravel())[1:]
        assert n >= 1 and sizes.max() > 500  # the object is found
        assert sizes.min() >= 16, (z, sorted(sizes)[:5])  # and no speck
