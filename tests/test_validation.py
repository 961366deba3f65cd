"""Checks and conversions at the boundary of the core (validation.py, progress.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepseg.core.utils.progress import CancelToken, Cancelled, check, report
from napari_deepseg.core.utils.validation import as_float_image, check_positive, check_scribbles


# --------------------------------------------------------------------------- as_float_image
@pytest.mark.parametrize(
    "shape, expected",
    [((5, 6), (5, 6, 1)), ((5, 6, 1), (5, 6, 1)), ((5, 6, 3), (5, 6, 3)), ((5, 6, 4), (5, 6, 3))],
    ids=["gray", "one-channel", "rgb", "rgba"],
)
def test_as_float_image_channels(shape, expected):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, shape).astype(np.uint8)
    out = as_float_image(arr)
    assert out.shape == expected
    assert out.dtype == np.float32
    # the colour channels are kept as they were (alpha dropped), only scaled
    ref = arr.reshape(5, 6, -1)[..., : expected[-1]].astype(np.float32) / 255
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_as_float_image_uint8_divides_by_255():
    arr = np.array([[0, 51], [102, 255]], np.uint8)
    out = as_float_image(arr)[..., 0]
    np.testing.assert_allclose(out, [[0.0, 0.2], [0.4, 1.0]], atol=1e-6)
    # uint8 is not stretched: a dim image stays dim
    dim = np.array([[10, 20], [20, 10]], np.uint8)
    np.testing.assert_allclose(as_float_image(dim)[..., 0], dim / 255.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.int16, np.float64])
def test_as_float_image_stretches_other_dtypes(dtype):
    arr = np.array([[100, 300], [500, 900]]).astype(dtype)
    out = as_float_image(arr)[..., 0]
    np.testing.assert_allclose(out, (arr - 100.0) / 800.0, atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0


def test_as_float_image_uint16_full_range():
    arr = np.array([[0, 65535], [32768, 1000]], np.uint16)
    out = as_float_image(arr)[..., 0]
    np.testing.assert_allclose(out, arr / 65535.0, atol=1e-6)


def test_as_float_image_float_inside_unit_range_is_kept():
    arr = np.array([[0.2, 0.4], [0.6, 0.3]], np.float32)
    np.testing.assert_array_equal(as_float_image(arr)[..., 0], arr)


@pytest.mark.parametrize("values", [[[-1.0, 0.0], [1.0, 3.0]], [[2.0, 4.0], [6.0, 10.0]]])
def test_as_float_image_float_outside_unit_range_is_stretched(values):
    arr = np.array(values, np.float32)
    out = as_float_image(arr)[..., 0]
    np.testing.assert_allclose(out, (arr - arr.min()) / (arr.max() - arr.min()), atol=1e-6)


def test_as_float_image_constant_image_is_zero_not_nan():
    out = as_float_image(np.full((4, 4), 7.5, np.float32))
    assert np.all(np.isfinite(out))
    out16 = as_float_image(np.full((4, 4), 300, np.uint16))
    assert np.all(out16 == 0.0)


def test_as_float_image_bool():
    arr = np.array([[True, False], [False, True]])
    out = as_float_image(arr)[..., 0]
    np.testing.assert_array_equal(out, arr.astype(np.float32))


def test_as_float_image_does_not_modify_input():
    arr = np.array([[1.0, 5.0], [3.0, 2.0]], np.float32)
    before = arr.copy()
    as_float_image(arr)
    np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_as_float_image_rejects_non_finite(bad):
    arr = np.ones((4, 4), np.float32)
    arr[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or infinite") as info:
        as_float_image(arr, name="my_image")
    assert "my_image" in str(info.value)
    assert "1 NaN" in str(info.value)


@pytest.mark.parametrize(
    "shape, named",
    [
        ((5,), "(5,)"),
        ((5, 6, 2), "(5, 6, 2)"),
        ((5, 6, 5), "(5, 6, 5)"),
        ((2, 5, 6, 3), "(2, 5, 6, 3)"),
        ((1, 6), "(1, 6)"),
        ((6, 1), "(6, 1)"),
        ((1, 1, 3), "(1, 1)"),
    ],
)
def test_as_float_image_bad_shapes(shape, named):
    with pytest.raises(ValueError) as info:
        as_float_image(np.zeros(shape, np.uint8), name="img")
    msg = str(info.value)
    assert msg.startswith("img must")
    assert named in msg


@pytest.mark.parametrize("bad", [np.array([["a", "b"], ["c", "d"]]), np.zeros((3, 3), complex)])
def test_as_float_image_non_numeric(bad):
    with pytest.raises(TypeError, match="image must hold numbers"):
        as_float_image(bad)


# --------------------------------------------------------------------------- check_scribbles
def _scrib(shape=(6, 7), dtype=np.uint8):
    s = np.zeros(shape, dtype)
    s[1, 1] = 1
    s[4, 5] = 2
    return s


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64])
def test_check_scribbles_accepts_integer_valued(dtype):
    s = _scrib(dtype=dtype)
    out = check_scribbles(s, (6, 7))
    assert out.dtype == np.uint8 and not np.shares_memory(out, s)  # labels fit a byte; a copy
    np.testing.assert_array_equal(out, _scrib().astype(np.int32))


def test_check_scribbles_more_classes():
    s = _scrib()
    s[0, 0] = 3
    assert set(np.unique(check_scribbles(s, (6, 7)))) == {0, 1, 2, 3}


def test_check_scribbles_empty():
    with pytest.raises(ValueError, match="empty") as info:
        check_scribbles(np.zeros((6, 7), np.uint8), (6, 7))
    assert "object (1)" in str(info.value) and "background (2)" in str(info.value)


@pytest.mark.parametrize("only", [1, 2, 5])
def test_check_scribbles_only_one_label(only):
    s = np.zeros((6, 7), np.uint8)
    s[2:4, 2:4] = only
    with pytest.raises(ValueError, match=f"only label {only}"):
        check_scribbles(s, (6, 7))


def test_check_scribbles_wrong_shape():
    with pytest.raises(ValueError) as info:
        check_scribbles(_scrib((6, 8)), (6, 7), name="strokes")
    msg = str(info.value)
    assert "strokes" in msg and "(6, 8)" in msg and "(6, 7)" in msg


def test_check_scribbles_negative():
    s = _scrib(dtype=np.int16)
    s[0, 0] = -3
    with pytest.raises(ValueError, match=">= 0") as info:
        check_scribbles(s, (6, 7))
    assert "-3" in str(info.value)


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf])
def test_check_scribbles_non_integer_floats(bad):
    s = _scrib(dtype=np.float32)
    s[0, 0] = bad
    with pytest.raises(ValueError, match="whole-number"):
        check_scribbles(s, (6, 7))


def test_check_scribbles_non_numeric():
    s = np.full((6, 7), "a")
    with pytest.raises(TypeError, match="integer labels"):
        check_scribbles(s, (6, 7))


# --------------------------------------------------------------------------- check_positive
def test_check_positive():
    assert check_positive(2, "lam") == 2.0
    assert check_positive(None, "lam") is None
    for bad in (0, -1, np.nan, np.inf, 1e7, 1e38):
        with pytest.raises(ValueError, match="lam must be a number > 0 and <= 1e"):
            check_positive(bad, "lam")
    assert check_positive(1e6, "lam") == 1e6
    with pytest.raises(ValueError, match="sigma"):
        check_positive(-2.0, "sigma")
    with pytest.raises(TypeError, match="lam must be a number"):
        check_positive("abc", "lam")
    with pytest.raises(TypeError, match="lam must be a number"):
        check_positive(None, "lam", allow_none=False)


# --------------------------------------------------------------------------- progress
def test_cancel_token_and_helpers():
    token = CancelToken()
    assert not token.cancelled
    check(token)
    check(None)
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled):
        check(token)
    calls = []
    report(lambda *a: calls.append(a), 1, 3, "x")
    report(None, 1, 3, "x")
    assert calls == [(1, 3, "x")]
