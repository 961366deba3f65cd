"""Pictures of results (core.visualize), checked by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core.io.visualize import PALETTE, demo_figure, overlay, side_by_side, to_rgb8

RED, BLUE, GREEN = PALETTE[0].tolist(), PALETTE[1].tolist(), PALETTE[2].tolist()


def _gray(value, shape=(2, 3)):
    return np.full(shape, value, np.uint8)


# ============================================================================ to_rgb8
def test_to_rgb8_gray_uint8_is_repeated_exactly():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    out = to_rgb8(img)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], img)


def test_to_rgb8_every_uint8_value_round_trips():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_rgb8(img)[..., 1], img)


def test_to_rgb8_rgb_and_rgba():
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb8(rgb), rgb)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(to_rgb8(rgba), rgb)  # alpha dropped


def test_to_rgb8_uint16_is_stretched_min_to_max():
    img = np.array([[1000, 2000], [3000, 5000]], np.uint16)
    out = to_rgb8(img)
    assert out.shape == (2, 2, 3)
    # (v - 1000) / 4000 * 255, rounded half up
    assert out[..., 0].tolist() == [[0, 64], [128, 255]]


def test_to_rgb8_float_in_unit_range_is_kept():
    img = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    assert to_rgb8(img)[..., 2].tolist() == [[0, 64], [128, 255]]
    # a float image inside [0, 1] is not stretched
    dim = np.array([[0.1, 0.2], [0.2, 0.1]], np.float64)
    assert to_rgb8(dim)[..., 0].tolist() == [[26, 51], [51, 26]]


def test_to_rgb8_float_outside_unit_range_is_stretched():
    img = np.array([[-2.0, 0.0], [2.0, 6.0]], np.float32)
    assert to_rgb8(img)[..., 0].tolist() == [[0, 64], [128, 255]]


def test_to_rgb8_constant_and_bool():
    assert to_rgb8(np.full((2, 2), 500, np.uint16)).max() == 0
    assert to_rgb8(np.array([[True, False], [False, True]]))[..., 0].tolist() == [[255, 0], [0, 255]]


def test_to_rgb8_rejects_nan():
    img = np.zeros((3, 3), np.float32)
    img[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        to_rgb8(img)


# ============================================================================ overlay
def test_overlay_alpha_one_paints_palette_colours():
    labels = np.array([[0, 1, 2], [3, 7, 0]])
    out = overlay(_gray(100), labels, alpha=1.0)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert out[0, 0].tolist() == [100, 100, 100]  # 0 stays transparent
    assert out[0, 1].tolist() == RED
    assert out[0, 2].tolist() == BLUE
    assert out[1, 0].tolist() == GREEN
    assert out[1, 1].tolist() == RED  # label 7 wraps round the six colours
    assert out[1, 2].tolist() == [100, 100, 100]


def test_overlay_half_alpha_blends_by_hand():
    labels = np.array([[0, 1, 2], [0, 0, 0]])
    out = overlay(_gray(100, (2, 3)), labels, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == [165, 70, 70]  # (100 + 230) / 2, (100 + 40) / 2, ...
    assert out[0, 2].tolist() == [70, 95, 165]  # (100 + 40) / 2, (100 + 90) / 2, (100 + 230) / 2


def test_overlay_quarter_alpha_on_colour_image():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 1] = (200, 100, 0)
    out = overlay(img, np.array([[0, 2], [0, 0]]), alpha=0.25)
    assert out[0, 0].tolist() == [0, 0, 0]
    # 0.75 * (200, 100, 0) + 0.25 * (40, 90, 230) = (160, 97.5, 57.5), rounded half up
    assert out[0, 1].tolist() == [160, 98, 58]


def test_overlay_alpha_zero_is_the_image():
    img = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    labels = np.random.default_rng(2).integers(0, 4, (5, 6))
    np.testing.assert_array_equal(overlay(img, labels, alpha=0.0), img)


def test_overlay_dim_background():
    labels = np.array([[0, 1], [2, 0]])
    out = overlay(_gray(100, (2, 2)), labels, alpha=0.5, dim_background=True)
    assert out[0, 0].tolist() == [35, 35, 35]  # 100 * 0.35
    assert out[1, 1].tolist() == [35, 35, 35]
    assert out[0, 1].tolist() == [165, 70, 70]  # labelled pixels are not dimmed
    assert out[1, 0].tolist() == [70, 95, 165]
    plain = overlay(_gray(100, (2, 2)), labels, alpha=0.5)
    assert plain[0, 0].tolist() == [100, 100, 100]


def test_overlay_all_background_and_float_image():
    img = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    out = overlay(img, np.zeros((2, 2), int), alpha=0.7, dim_background=True)
    assert out[..., 0].tolist() == [[0, 89], [89, 0]]  # 255 * 0.35 = 89.25


# ============================================================================ side_by_side
def _panel(rows, cols, value):
    return np.full((rows, cols, 3), value, np.uint8)


def test_side_by_side_widths_and_gaps():
    a, b, c = _panel(4, 3, 10), _panel(4, 5, 20), _panel(4, 2, 30)
    out = side_by_side([a, b, c])
    assert out.dtype == np.uint8 and out.shape == (4, 3 + 8 + 5 + 8 + 2, 3)
    assert (out[:, :3] == 10).all()
    assert (out[:, 3:11] == 255).all()
    assert (out[:, 11:16] == 20).all()
    assert (out[:, 16:24] == 255).all()
    assert (out[:, 24:] == 30).all()


@pytest.mark.parametrize("gap", [0, 1, 5])
def test_side_by_side_gap_argument(gap):
    out = side_by_side([_panel(2, 3, 0), _panel(2, 4, 0)], gap=gap)
    assert out.shape == (2, 7 + gap, 3)
    assert (out[:, 3 : 3 + gap] == 255).all()
    assert (out[:, :3] == 0).all() and (out[:, 3 + gap :] == 0).all()


def test_side_by_side_single_panel_has_no_gap():
    a = _panel(3, 4, 9)
    np.testing.assert_array_equal(side_by_side([a]), a)


def test_side_by_side_pads_short_panels_with_white():
    out = side_by_side([_panel(5, 2, 0), _panel(3, 2, 0)], gap=1)
    assert out.shape == (5, 5, 3)
    assert (out[:, :2] == 0).all()
    assert (out[:3, 3:] == 0).all() and (out[3:, 3:] == 255).all()


# ============================================================================ demo_figure
def test_demo_figure_shape_and_panels():
    rows, cols = 20, 30
    image = np.full((rows, cols), 120, np.uint8)
    image[5:15, 10:20] = 200
    scribbles = np.zeros((rows, cols), np.uint8)
    scribbles[9:11, 12:18] = 1
    scribbles[0:2, :] = 2
    result = np.zeros((rows, cols), np.uint8)
    result[5:15, 10:20] = 1

    fig = demo_figure(image, scribbles, result)
    assert fig.dtype == np.uint8 and fig.shape == (rows, 3 * cols + 2 * 8, 3)
    left = fig[:, :cols]
    middle = fig[:, cols + 8 : 2 * cols + 8]
    right = fig[:, 2 * cols + 16 :]
    np.testing.assert_array_equal(left, to_rgb8(image))
    assert (fig[:, cols : cols + 8] == 255).all() and (fig[:, 2 * cols + 8 : 2 * cols + 16] == 255).all()
    # scribbles at alpha 0.9: 0.1 * 200 + 0.9 * (230, 40, 40) = (227, 56, 56); 0.1 * 120 + 0.9 * (40, 90, 230)
    assert middle[10, 15].tolist() == [227, 56, 56]
    assert middle[0, 0].tolist() == [48, 93, 219]
    assert middle[5, 5].tolist() == [120, 120, 120]
    # result: background dimmed, object boundary yellow, object interior tinted
    assert right[0, 0].tolist() == [42, 42, 42]  # 120 * 0.35
    assert right[5, 10].tolist() == [255, 230, 0]
    assert right[14, 19].tolist() == [255, 230, 0]
    assert right[10, 15].tolist() == [211, 144, 144]  # 0.65 * 200 + 0.35 * (230, 40, 40)
    assert (right[4, :] != [255, 230, 0]).any(axis=-1).all()  # boundary is inside the object


def test_demo_figure_colour_image():
    image = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    labels = np.zeros((9, 11), np.uint8)
    labels[2:6, 3:8] = 1
    fig = demo_figure(image, labels, labels)
    assert fig.shape == (9, 3 * 11 + 16, 3)
    np.testing.assert_array_equal(fig[:, :11], image)
