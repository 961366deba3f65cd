"""Any size (issue 5): the palette, the multi-level pyramid with grown bands, on-demand edges, the memory guard."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from _synthetic import disk_image, disk_scribbles
from napari_deepseg.core import SegmentationSession
from napari_deepseg.core.cut import bands, blocks, graphcut, maxflow, star_steps
from napari_deepseg.core.utils import memory
from napari_deepseg.core.cut import pyramid
from napari_deepseg.core.evaluation.metrics import iou
from napari_deepseg.core.cut.palette import build_palette, strips
from napari_deepseg.core.utils.validation import as_float_image

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# =========================================================================== palette
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_uint8_palette_is_exact(channels):
    rng = np.random.default_rng(0)
    shape = (37, 23) if channels is None else (37, 23, channels)
    image = rng.integers(0, 256, shape).astype(np.uint8)
    p = build_palette(image)
    np.testing.assert_array_equal(p.image(), as_float_image(image))
    assert p.ids.dtype == np.int32 and p.counts.sum() == 37 * 23
    assert len(np.unique(p.colours, axis=0)) == len(p.colours)  # distinct colours


def test_float_palette_is_quantised_to_a_fraction_of_a_level():
    rng = np.random.default_rng(1)
    image = rng.normal(5.0, 2.0, (30, 40, 3))  # stretched from min to max, as as_float_image does
    p = build_palette(image)
    err = np.abs(p.image() - as_float_image(image))
    assert err.max() <= 0.5 / 255 + 1e-6


def test_palette_reads_a_lazy_array_strip_by_strip(monkeypatch):
    da = pytest.importorskip("dask.array")
    from napari_deepseg.core.cut import palette as palette_module

    image, _ = disk_image((64, 80), seed=3)
    monkeypatch.setattr(palette_module, "STRIP_PIXELS", 80 * 8)  # 8 rows per strip
    lazy = da.from_array(image, chunks=(16, 80, 3))
    reads = []
    original = type(lazy).__getitem__

    def spy(self, key):
        reads.append(key)
        return original(self, key)

    monkeypatch.setattr(type(lazy), "__getitem__", spy)
    p = build_palette(lazy)
    np.testing.assert_array_equal(p.image(), as_float_image(image))
    assert len(reads) == 8 and all(k.stop - k.start == 8 for k in reads)


def test_palette_rejects_nan():
    image = np.zeros((8, 8), np.float32)
    image[2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN"):
        build_palette(image)


def test_strips_cover_every_row_once():
    parts = list(strips(101, 7, pixels=70, multiple=2))
    rows = np.concatenate([np.arange(s.start, s.stop) for s in parts])
    np.testing.assert_array_equal(rows, np.arange(101))
    assert all((s.stop - s.start) % 2 == 0 for s in parts[:-1])


# =========================================================================== building blocks
def test_colour_edges_equal_the_precomputed_weights():
    rng = np.random.default_rng(2)
    colour = rng.normal(size=(9, 11, 3)).astype(np.float32)
    sq = [graphcut.neighbour_sqdiff(colour, off) for off in graphcut.OFFSETS_8]
    nl = graphcut.contrast_nlinks(sq, graphcut.OFFSETS_8, (9, 11), lam=3.0, sigma=1.7)
    edges = bands.ColourEdges(lambda f: colour.reshape(-1, 3)[f], (9, 11), 3.0, 1.7)
    arrays = bands.ArrayEdges(nl)
    for k, (dr, dc) in enumerate(graphcut.OFFSETS_8):
        a, _ = graphcut.pair_slices((9, 11), (dr, dc))
        rr, cc = np.mgrid[a]
        np.testing.assert_allclose(edges.weights(k, rr.ravel(), cc.ravel()), nl.weights[k].ravel(), rtol=1e-5)
        np.testing.assert_array_equal(arrays.weights(k, rr.ravel(), cc.ravel()), nl.weights[k].ravel())


def test_star_steps_match_star_edges_away_from_ties():
    centres = np.zeros((15, 17), bool)
    centres[7, 8] = True  # one centre: no ties
    p, q = graphcut.star_edges(centres)
    steps = star_steps.StarSteps(centres).step(p.astype(np.int64))
    np.testing.assert_array_equal(steps, q)
    assert star_steps.StarSteps(centres).step(np.array([7 * 17 + 8])).tolist() == [-1]


def test_coarse_seeds_equal_coarse_hard_for_two_labels():
    rng = np.random.default_rng(3)
    hard = rng.choice([-1, -1, -1, 0, 1], size=(13, 18)).astype(np.int32)
    ref = blocks.coarse_hard(hard)
    fg, bg = blocks.coarse_seeds(hard == 0, hard == 1)
    np.testing.assert_array_equal(fg, ref == 0)
    np.testing.assert_array_equal(bg, ref == 1)


def test_label_edges_and_grow_match_morphology():
    rng = np.random.default_rng(4)
    labels = ndi.binary_opening(rng.random((30, 40)) < 0.5)
    ref = (labels ^ ndi.binary_erosion(labels, border_value=1)) | (~labels ^ ndi.binary_erosion(~labels, border_value=1))
    edge = bands.label_edges(labels)
    np.testing.assert_array_equal(edge, ref)
    grown = bands.grow(np.zeros(labels.shape, bool), np.flatnonzero(edge), 2)
    np.testing.assert_array_equal(grown, ndi.binary_dilation(edge, structure=np.ones((3, 3), bool), iterations=2))


def test_refine_band_grows_past_a_coarse_error_wider_than_the_band():
    """A coarse cut 6 px too wide on one side: a 2 px band alone keeps the error, the grown band fixes it."""
    shape = (40, 60)
    truth = np.zeros(shape, bool)
    truth[10:30, 15:40] = True
    cost_fg = np.where(truth, 0.0, 3.0).astype(np.float32)
    cost_bg = np.where(truth, 3.0, 0.0).astype(np.float32)
    flat = [np.zeros(np.zeros(shape)[graphcut.pair_slices(shape, o)[0]].shape, np.float32) for o in graphcut.OFFSETS_8]
    nl = graphcut.contrast_nlinks(flat, graphcut.OFFSETS_8, shape, lam=0.5, sigma=1.0)
    init = np.zeros(shape, bool)
    init[10:30, 15:46] = True  # the coarse cut took a 6 px "shadow" on the right
    hard_fg = np.zeros(shape, bool)
    hard_fg[20, 25] = True
    hard_bg = np.zeros(shape, bool)
    hard_bg[0, 0] = True
    band = bands.band_mask(init, hard_fg, hard_bg, 2)
    fixed = bands.solve_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg)
    assert fixed[20, 41]  # beyond the band: the error stays
    grown, rounds = bands.refine_band(cost_fg, cost_bg, nl, init, band, hard_fg, hard_bg, radius=2)
    assert rounds > 1
    np.testing.assert_array_equal(grown, truth)
    np.testing.assert_array_equal(grown, maxflow.solve_binary(cost_fg, cost_bg, nl, hard_fg, hard_bg))


# =========================================================================== the session's pyramid
def test_several_levels_match_the_single_level_cut(monkeypatch):
    image, truth = disk_image((320, 320), radius=100, noise=0.05, seed=9)
    scrib = disk_scribbles(truth)
    monkeypatch.setattr(pyramid, "COARSEST_PIXELS", 5_000)  # 320 -> 160 -> 80 -> 40 (1600 px)
    ses = SegmentationSession("classic")
    entry = ses.set_image(image)
    calls = []
    original = bands.refine_band
    monkeypatch.setattr(bands, "refine_band", lambda *a, **k: calls.append(a[4].shape) or original(*a, **k))
    multi = ses.segment(scrib)
    assert [s for s in calls[:3]] == [(80, 80), (160, 160), (320, 320)]  # three finer levels, coarse to fine
    assert entry.coarse.coarse.coarse.shape == (40, 40)
    single = ses.segment(scrib, multilevel=False)
    assert iou(multi == 1, single == 1) >= 0.99
    assert iou(multi == 1, truth) >= 0.9


def test_palette_entry_builds_colour_only_when_asked():
    image, truth = disk_image((400, 400), radius=120, seed=2)
    ses = SegmentationSession("classic")
    entry = ses.set_image(image)
    ses.segment(disk_scribbles(truth))  # coarse-to-fine: no full-resolution colour image is built
    assert entry._colour is None and entry.mixture_on_palette
    assert entry.appearance.codes.shape[0] == len(entry.palette.colours)


def test_level_sigma_in_strips_equals_auto_sigma(monkeypatch):
    image, _ = disk_image((90, 70), seed=4)
    ses = SegmentationSession("classic")
    entry = ses.set_image(image)
    from napari_deepseg.core.cut import image as image_module
    from napari_deepseg.core.cut import palette as palette_module

    monkeypatch.setattr(image_module, "strips", lambda r, c, **k: palette_module.strips(r, c, pixels=70 * 7, **k))
    got = pyramid.level_sigma(entry, None)
    ref = graphcut.auto_sigma([graphcut.neighbour_sqdiff(entry.colour, o) for o in graphcut.OFFSETS_8], "mean")
    assert got == pytest.approx(ref, rel=1e-5)
    assert pyramid.level_sigma(entry, 2.5) == 2.5


# =========================================================================== too large
def test_too_large_gets_a_message_with_the_way_out(monkeypatch):
    image, truth = disk_image((400, 400), radius=120, seed=2)
    scrib = disk_scribbles(truth)
    ses = SegmentationSession("classic")
    ses.set_image(image)
    monkeypatch.setenv("NAPARI_DEEPSEG_MEMORY_LIMIT", "40M")  # 160 k pixels x 500 B = 80 MB > 40 MB
    with pytest.raises(memory.ImageTooLargeError, match="single-level cut .* use the coarse-to-fine cut"):
        ses.segment(scrib, multilevel=False)
    with pytest.raises(ValueError, match="seed preset .* use the default preset"):
        ses.segment(scrib, preset="seed")
    out = ses.segment(scrib)  # the coarse-to-fine cut fits (16 MB)
    assert iou(out == 1, truth) > 0.9
    monkeypatch.setenv("NAPARI_DEEPSEG_MEMORY_LIMIT", "1M")
    with pytest.raises(memory.ImageTooLargeError, match="downsample"):
        SegmentationSession("classic").set_image(image[::-1].copy())


def test_memory_limit_parsing():
    assert memory.parse_bytes("512M") == 512 << 20
    with pytest.raises(ValueError, match="memory limit"):
        memory.parse_bytes("lots")


def test_read_image_opens_pngs_beyond_pillows_bomb_limit(tmp_path):
    from PIL import Image

    from napari_deepseg.core.io.files import read_image

    before = Image.MAX_IMAGE_PIXELS  # other libraries (napari's readers) may have lifted it already
    Image.MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default: read_image must not depend on it
    try:
        path = tmp_path / "wide.png"
        Image.fromarray(np.zeros((2, 90_000_000), np.uint8)).save(path)  # 180 MP: Pillow refuses above 179 MP
        assert read_image(path).shape == (2, 90_000_000)
        assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the limit is back for everything else
    finally:
        Image.MAX_IMAGE_PIXELS = before


def test_rgba_zarr_image_stays_lazy_when_alpha_is_dropped():
    zarr = pytest.importorskip("zarr")
    from napari_deepseg.core.utils.validation import image_layout

    z = zarr.zeros((40, 30, 4), chunks=(10, 30, 4), dtype="uint8")
    z[:] = 7
    out = image_layout(z)
    assert out.shape == (40, 30, 3) and not isinstance(out, np.ndarray)
    assert int(np.asarray(out).max()) == 7


def test_palette_by_sorting_equals_palette_by_table(monkeypatch):
    """Small images sort their colour codes, large ones use a dense table: the same palette."""
    from napari_deepseg.core.cut import palette as palette_module

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    image[:20] = image[20:40]  # repeated colours
    small = palette_module.build_palette(image)  # 4200 px << 2^24 codes: sorted
    monkeypatch.setattr(palette_module, "TABLE_PIXELS_PER_CODE", 10**9)  # force the table
    table = palette_module.build_palette(image)
    for a, b in zip((small.ids, small.colours, small.counts), (table.ids, table.colours, table.counts)):
        np.testing.assert_array_equal(a, b)
    assert small.ids.dtype == np.int32


def test_the_default_lambda_follows_the_oversampling(monkeypatch):
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    from napari_deepseg.core.cut import energy
    from napari_deepseg.core.cut.image import oversampling

    rough = gaussian_filter(np.random.default_rng(1).random((160, 200, 3)), (1.5, 1.5, 0))
    small = (255 * (rough - rough.min()) / np.ptp(rough)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((1600, 1280), Image.BICUBIC))  # 2 MP: coarse-to-fine
    strokes = np.zeros(big.shape[:2], np.uint8)
    strokes[600:680, 700:900], strokes[:20, :] = 1, 2
    used = []
    for module, name in ((pyramid, "cut_multilevel"), (energy, "cut_default")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda e, s, c, lam, *a, _o=original, **k: used.append(lam) or _o(e, s, c,
                                                                                                            lam, *a, **k))
    session = SegmentationSession("classic")
    entry = session.set_image(big)
    assert oversampling(entry) == 8
    session.segment(strokes)
    assert session.last_lambda == 160.0
    session.segment(strokes, lam=20.0)  # a λ given is used as it is
    session.set_image(small)  # one level: the preset's λ
    session.segment(strokes[::8, ::8])
    assert used == [160.0, 20.0, 20.0]


def test_star_steps_of_a_centre_region_keep_only_its_edge_in_the_tree():
    from scipy import ndimage as ndi

    rng = np.random.default_rng(5)
    centres = ndi.binary_dilation(rng.random((60, 70)) > 0.995, iterations=6)  # blobs: large centre regions
    steps = star_steps.StarSteps(centres)
    assert 0 < len(steps.points) < np.count_nonzero(centres) // 2
    outside = np.flatnonzero(~centres.ravel())
    rr, cc = np.divmod(outside, centres.shape[1])
    distance, _ = steps.tree.query(np.stack([rr, cc], axis=1))
    # the nearest edge pixel is as near as the nearest centre pixel
    np.testing.assert_allclose(distance, ndi.distance_transform_edt(~centres).ravel()[outside], atol=1e-9)
    assert (steps.step(outside) >= 0).all()
    assert (steps.step(np.flatnonzero(centres.ravel())) == -1).all()  # inner centres are centres too


def test_star_steps_with_a_window_replaced_step_towards_the_new_centres():
    from scipy import ndimage as ndi

    centres = np.zeros((40, 50), bool)
    centres[5:15, 5:15] = True
    window = np.zeros((20, 20), bool)
    window[8:16, 8:16] = True  # a new centre region inside rows 20-40, cols 25-45
    steps = star_steps.StarSteps(centres).with_window(slice(20, 40), slice(25, 45), window)
    assert steps.with_window(slice(20, 40), slice(25, 45), window) is steps  # unchanged: kept
    whole = centres.copy()
    whole[20:40, 25:45] = window
    outside = np.flatnonzero(~whole.ravel())
    rr, cc = np.divmod(outside, whole.shape[1])
    distance, _ = steps.tree.query(np.stack([rr, cc], axis=1))
    np.testing.assert_allclose(distance, ndi.distance_transform_edt(~whole).ravel()[outside], atol=1e-9)
    assert (steps.step(np.flatnonzero(whole.ravel())) == -1).all()
    assert len(steps.points) < np.count_nonzero(whole)
