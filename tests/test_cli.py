"""The command line, ``napari-deepseg segment | demo``, run for real.

Most runs call :func:`napari_deepseg.cli.main` in-process (fast, output captured
with ``capsys``); two run ``python -m napari_deepseg.cli`` as a subprocess to check
the exit status and that an error is one line on stderr, never a traceback.
Nothing here downloads weights: pretrained ResNet-50 runs use a randomly
initialised state dict, ``TORCH_HOME`` points at an empty folder and
``torch.hub.load_state_dict_from_url`` is replaced by a function that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from _synthetic import disk_image, disk_scribbles, three_class_image, three_class_scribbles
from napari_deepseg import samples
from napari_deepseg.cli import main
from napari_deepseg.core.io.files import read_image, read_labels

PROG = "napari-deepseg"
GAP = 8  # white columns between the demo's panels (visualize.side_by_side default)


# ============================================================================ helpers
def _iou(mask, truth) -> float:
    a, b = np.asarray(mask) == 1, np.asarray(truth, bool)
    return float((a & b).sum() / max(1, (a | b).sum()))


def _save(path, array):
    """PNG via Pillow (8-bit RGB/gray, 16-bit gray), TIFF via tifffile (any dtype)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        tifffile.imwrite(str(path), array)
    else:
        Image.fromarray(array).save(path)
    return path


def _one_line(text: str) -> str:
    """The single line of ``text`` (fails if there are none or several)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def _segment(tmp_path, image_name, image, scribbles, *options, output="mask.png"):
    """Write ``image`` and ``scribbles`` into ``tmp_path``; return the argv of ``segment``."""
    img = _save(tmp_path / image_name, image)
    scr = _save(tmp_path / "scribbles.png", scribbles)
    out = tmp_path / output
    return ["segment", str(img), "--scribbles", str(scr), "-o", str(out), *options], out


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch, no_network):
    """An empty ``$TORCH_HOME`` (no cached resnet50) and no weights override folder."""
    import torch.hub

    home = tmp_path / "torch-home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # in case set_dir() was called
    assert str(home) in torch.hub.get_dir()
    return home


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A randomly initialised torchvision resnet50 state dict saved with torch.save."""
    import torch
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random-resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def disk():
    """``(rgb8 image, truth, scribbles)``: a 64 x 80 disk with object and frame strokes."""
    image, truth = disk_image((64, 80), channels=3, dtype=np.uint8, seed=1)
    return image, truth, disk_scribbles(truth)


# ============================================================================ segment: results
IMAGE_KINDS = {
    # file name: (channels, dtype)
    "rgb8.png": (3, np.uint8),
    "gray16.png": (1, np.uint16),
    "gray16.tif": (1, np.uint16),
    "float.tif": (3, np.float32),
}


@pytest.mark.parametrize("preset", ["default", "seed"])
@pytest.mark.parametrize("features", ["classic", "rgb"])
@pytest.mark.parametrize("image_name", list(IMAGE_KINDS))
def test_segment_disk(tmp_path, capsys, image_name, features, preset):
    channels, dtype = IMAGE_KINDS[image_name]
    image, truth = disk_image((64, 80), channels=channels, dtype=dtype, seed=2)
    argv, out = _segment(tmp_path, image_name, image, disk_scribbles(truth),
                         "--features", features, "--preset", preset)
    back = read_image(tmp_path / image_name)  # the file really holds what was meant
    assert back.shape == image.shape and back.max() == image.max()
    if dtype != np.uint8:
        assert back.dtype != np.uint8  # 16-bit / float survive the round trip

    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_line(captured.err)
    assert line.startswith(str(out)) and "80x64" in line and "labels [0, 1]" in line

    mask = read_labels(out)
    assert mask.shape == image.shape[:2]
    assert set(np.unique(mask).tolist()) <= {0, 1}
    assert _iou(mask, truth) >= 0.9


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_segment_three_classes(tmp_path, capsys, preset):
    image, truth = three_class_image((64, 96), seed=4)
    scribbles = three_class_scribbles(truth)
    assert set(np.unique(scribbles).tolist()) == {0, 1, 2, 3}
    argv, out = _segment(tmp_path, "three.png", image, scribbles, "--preset", preset)
    assert main(argv) == 0
    assert "labels [0, 1, 3]" in _one_line(capsys.readouterr().err)
    mask = read_labels(out)
    assert mask.shape == truth.shape
    assert set(np.unique(mask).tolist()) == {0, 1, 3}
    for k in (1, 3):
        assert _iou(mask == k, truth == k) >= 0.9, k


@pytest.mark.parametrize(
    "options",
    [
        ["--lambda", "5"],
        ["--lambda", "0.01", "--sigma", "0.5"],
        ["--sigma", "30", "--iterations", "0"],
        ["--preset", "seed", "--lambda", "3", "--sigma", "2"],
        ["--lambda", "200", "--iterations", "5"],
    ],
    ids=lambda o: " ".join(o),
)
def test_segment_energy_options(tmp_path, capsys, disk, options):
    image, truth, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, *options)
    assert main(argv) == 0
    _one_line(capsys.readouterr().err)
    mask = read_labels(out)
    assert mask.shape == truth.shape
    assert set(np.unique(mask).tolist()) <= {0, 1}
    # the scribbles are hard constraints whatever the energy parameters
    assert (mask[scribbles == 1] == 1).all() and (mask[scribbles == 2] == 0).all()
    assert _iou(mask, truth) >= 0.5


def test_segment_quiet_tiff_output_in_new_folder(tmp_path, capsys, disk):
    image, truth, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, "-q", output="new/sub/mask.tif")
    assert main(argv) == 0
    assert capsys.readouterr() == ("", "")
    mask = read_labels(out)
    assert mask.shape == truth.shape and _iou(mask, truth) >= 0.9


def test_segment_resnet50_with_local_weights(tmp_path, capsys, random_weights, no_network):
    image, truth = disk_image((64, 64), channels=3, seed=5)
    argv, out = _segment(tmp_path, "small.png", image, disk_scribbles(truth),
                         "--features", "resnet50", "--weights", str(random_weights), "--device", "cpu")
    assert main(argv) == 0
    assert "64x64" in _one_line(capsys.readouterr().err)
    mask = read_labels(out)
    assert mask.shape == (64, 64)
    assert set(np.unique(mask).tolist()) <= {0, 1}
    assert no_network == []


# ============================================================================ segment: bad input
def _write_bad_case(tmp_path, case, disk, weights):
    """Files for one bad-input case; returns ``(argv, output path, words the message names)``."""
    image, truth, scribbles = disk
    img = _save(tmp_path / "img.png", image)
    scr = _save(tmp_path / "scribbles.png", scribbles)
    out = tmp_path / "out" / "mask.png"
    extra = []
    if case == "missing image":
        img = tmp_path / "nowhere.png"
        words = ["not found", "nowhere.png"]
    elif case == "missing scribbles":
        scr = tmp_path / "no-scribbles.png"
        words = ["not found", "no-scribbles.png"]
    elif case == "garbage image":
        img = tmp_path / "garbage.png"
        img.write_bytes(b"\x89PNG not really" + bytes(range(256)) * 4)
        words = ["cannot read image", "garbage.png"]
    elif case == "garbage tiff":
        img = tmp_path / "garbage.tif"
        img.write_bytes(b"II*\x00" + b"\xff" * 64)
        words = ["cannot read image", "garbage.tif"]
    elif case == "scribbles of another shape":
        scr = _save(tmp_path / "small-scribbles.png", scribbles[:40, :50])
        words = ["shape", "(40, 50)", "(64, 80)"]
    elif case == "empty scribbles":
        scr = _save(tmp_path / "empty.png", np.zeros_like(scribbles))
        words = ["empty"]
    elif case == "only one label":
        scr = _save(tmp_path / "one.png", np.where(scribbles == 1, 1, 0).astype(np.uint8))
        words = ["only label 1"]
    elif case == "image with NaNs":
        img_f, _ = disk_image((64, 80), channels=3, dtype=np.float32, seed=1)
        img_f[10, 10, 0] = np.nan
        img_f[20, 30] = np.inf
        img = _save(tmp_path / "nan.tif", img_f)
        words = ["NaN"]
    elif case == "missing weights file":
        extra = ["--features", "resnet50", "--device", "cpu", "--weights", str(tmp_path / "none.pth")]
        words = ["weights", "not found", "none.pth"]
    elif case == "corrupt weights file":
        bad = tmp_path / "bad.pth"
        bad.write_bytes(b"\x00\x01 not a checkpoint \xff")  # binary garbage (text files: test_cli_messages.py)
        extra = ["--features", "resnet50", "--device", "cpu", "--weights", str(bad)]
        words = ["cannot read weights", "bad.pth"]
    elif case == "weights of another network":
        import torch

        other = tmp_path / "other.pth"
        torch.save({"conv.weight": torch.zeros(3, 3)}, other)
        extra = ["--features", "resnet50", "--device", "cpu", "--weights", str(other)]
        words = ["do not fit", "resnet50"]
    elif case == "weights with classic":
        extra = ["--weights", str(weights)]
        words = ["--weights", "classic"]
    elif case == "weights with rgb":
        extra = ["--features", "rgb", "--weights", str(weights)]
        words = ["--weights", "rgb"]
    elif case == "negative lambda":
        extra = ["--lambda", "-1"]
        words = ["lambda", "-1"]
    elif case == "zero sigma":
        extra = ["--sigma", "0"]
        words = ["sigma"]
    elif case == "nan lambda":
        extra = ["--lambda", "nan"]
        words = ["lambda", "nan"]
    elif case == "negative iterations":
        extra = ["--iterations", "-1"]
        words = ["iterations"]
    elif case == "unknown resnet layer":
        extra = ["--features", "resnet50", "--device", "cpu", "--weights", str(weights), "--layers", "layer9"]
        words = ["layers", "layer9"]
    else:  # pragma: no cover
        raise AssertionError(case)
    return ["segment", str(img), "--scribbles", str(scr), "-o", str(out), *extra], out, words


BAD_CASES = [
    "missing image",
    "missing scribbles",
    "garbage image",
    "garbage tiff",
    "scribbles of another shape",
    "empty scribbles",
    "only one label",
    "image with NaNs",
    "missing weights file",
    "corrupt weights file",
    "weights of another network",
    "weights with classic",
    "weights with rgb",
    "negative lambda",
    "zero sigma",
    "nan lambda",
    "negative iterations",
    "unknown resnet layer",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_segment_bad_input(tmp_path, capsys, disk, random_weights, no_network, case):
    argv, out, words = _write_bad_case(tmp_path, case, disk, random_weights)
    status = main(argv)
    captured = capsys.readouterr()
    assert status != 0
    assert captured.out == ""
    line = _one_line(captured.err)
    assert line.startswith(f"{PROG}: error: ")
    for word in words:
        assert word in line, (word, line)
    assert not out.exists()
    assert no_network == []


def test_segment_unknown_backbone_is_an_argparse_error(tmp_path, capsys, disk):
    image, _, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, "--features", "vgg99")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no usage dump
    assert "--features" in lines[0] and "vgg99" in lines[0] and "classic" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [[], ["segment"], ["segment", "img.png"], ["frobnicate"], ["demo", "--sample", "moon"]],
    ids=["nothing", "segment alone", "no scribbles", "unknown command", "unknown sample"],
)
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "napari-deepseg" in err and "--help" in err, err


# ============================================================================ formerly known bugs
def test_segment_gray_alpha_png(tmp_path, capsys, disk):
    _, truth, scribbles = disk
    gray, _ = disk_image((64, 80), channels=1, dtype=np.uint8, seed=1)
    la = np.stack([gray, np.full_like(gray, 255)], axis=-1)
    img = tmp_path / "la.png"
    Image.fromarray(la).save(img)
    with Image.open(img) as im:
        assert im.mode == "LA"
    scr = _save(tmp_path / "s.png", scribbles)
    out = tmp_path / "m.png"
    assert main(["segment", str(img), "--scribbles", str(scr), "-o", str(out)]) == 0
    assert _iou(read_labels(out), truth) >= 0.9


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_segment_huge_lambda_is_refused_or_respects_scribbles(tmp_path, capsys, disk):
    image, _, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, "--lambda", "1e38")
    status = main(argv)
    if status == 0:
        mask = read_labels(out)
        assert (mask[scribbles == 1] == 1).all()
    else:
        assert "lambda" in _one_line(capsys.readouterr().err)


def test_segment_output_without_suffix_names_the_file(tmp_path, capsys, disk):
    image, _, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, output="mask")
    assert main(argv) != 0
    line = _one_line(capsys.readouterr().err)
    assert "mask" in line
    assert not out.exists()


def test_segment_tiny_sigma_is_refused_or_clean(tmp_path, capsys, recwarn, disk):
    image, truth, scribbles = disk
    argv, out = _segment(tmp_path, "img.png", image, scribbles, "--sigma", "1e-30")
    status = main(argv)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    if status != 0:
        assert "sigma" in _one_line(capsys.readouterr().err)


def test_demo_output_without_suffix_names_the_file(tmp_path, capsys, empty_torch_home):
    out = tmp_path / "figure"
    assert main(["demo", "--sample", "aerial", "-o", str(out)]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert "figure" in lines[-1]
    assert not out.exists()


# ============================================================================ real subprocess
def _run_cli(args, cwd, torch_home):
    env = dict(os.environ, TORCH_HOME=str(torch_home), PYTHONWARNINGS="ignore")
    env.pop("NAPARI_DEEPSEG_WEIGHTS_DIR", None)
    return subprocess.run([sys.executable, "-m", "napari_deepseg.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "case",
    [
        "nan",
        "garbage tiff",
    ],
)
def test_subprocess_error_is_one_line(tmp_path, case):
    image, truth = disk_image((64, 80), channels=3, dtype=np.float32, seed=1)
    if case == "nan":
        image[5, 5, 1] = np.nan
        name, word = _save(tmp_path / "nan.tif", image).name, "NaN"
    else:
        (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\xff" * 64)
        name, word = "bad.tif", "bad.tif"
    _save(tmp_path / "s.png", disk_scribbles(truth))
    proc = _run_cli(["segment", name, "--scribbles", "s.png", "-o", "m.png"], tmp_path, tmp_path / "th")
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = _one_line(proc.stderr)
    assert line.startswith(f"{PROG}: error: ") and word in line
    assert not (tmp_path / "m.png").exists()


def test_subprocess_success(tmp_path, disk):
    image, truth, scribbles = disk
    _save(tmp_path / "img.png", image)
    _save(tmp_path / "s.png", scribbles)
    proc = _run_cli(["segment", "img.png", "--scribbles", "s.png", "-o", "m.tif"], tmp_path, tmp_path / "th")
    assert proc.returncode == 0, proc.stderr
    assert "m.tif: 80x64 labels [0, 1]" in _one_line(proc.stderr)
    assert _iou(read_labels(tmp_path / "m.tif"), truth) >= 0.9


# ============================================================================ demo
def _panels(figure, width):
    """The three panels of a demo figure of an image ``width`` pixels wide."""
    return [figure[:, k * (width + GAP): k * (width + GAP) + width] for k in range(3)]


def test_demo_cat_without_weights(tmp_path, capsys, empty_torch_home, no_network):
    out = tmp_path / "figs" / "d.png"
    assert main(["demo", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    note = _one_line(captured.err)
    assert note.startswith(f"{PROG}: ") and "resnet50" in note and "classic" in note
    assert "error" not in note
    summary = _one_line(captured.out)
    assert "'cat'" in summary and "classic" in summary

    cat, scribbles = samples.cat_sample()
    rows, cols = scribbles.shape
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        fig = np.asarray(im)
    assert fig.shape[0] == rows
    assert abs(fig.shape[1] - 3 * cols) <= 3 * GAP  # image | scribbles | result
    assert fig.shape[1] == 3 * cols + 2 * GAP
    image_panel, scribble_panel, result_panel = _panels(fig, cols)
    np.testing.assert_array_equal(image_panel, cat)
    assert (fig[:, cols: cols + GAP] == 255).all()  # white gap
    # scribbles drawn (nearly opaque) only where painted; the result panel differs from the image
    assert (scribble_panel[scribbles == 0] == cat[scribbles == 0]).all()
    assert (scribble_panel[scribbles > 0] != cat[scribbles > 0]).any(axis=-1).all()
    assert not np.array_equal(result_panel, cat)
    assert no_network == []


def test_demo_aerial(tmp_path, capsys, empty_torch_home, no_network):
    out = tmp_path / "aerial.png"
    assert main(["demo", "--sample", "aerial", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    _one_line(captured.err)
    assert "'aerial'" in _one_line(captured.out)
    image, _ = samples.aerial_sample()
    with Image.open(out) as im:
        assert im.size == (3 * image.shape[1] + 2 * GAP, image.shape[0])
    assert no_network == []


def test_demo_resnet50_without_weights_fails(tmp_path, capsys, empty_torch_home, no_network):
    out = tmp_path / "d.png"
    assert main(["demo", "--features", "resnet50", "-o", str(out)]) != 0
    captured = capsys.readouterr()
    line = _one_line(captured.err)
    assert line.startswith(f"{PROG}: error: ") and "resnet50" in line and "not cached" in line
    assert captured.out == ""
    assert not out.exists()
    assert no_network == []


def test_demo_unknown_features_fails(tmp_path, capsys, empty_torch_home):
    out = tmp_path / "d.png"
    assert main(["demo", "--features", "vgg99", "-o", str(out)]) != 0
    line = _one_line(capsys.readouterr().err)
    assert "vgg99" in line and "classic" in line
    assert not out.exists()


def test_demo_picks_cached_resnet50(tmp_path, capsys, empty_torch_home, no_network, random_weights):
    from torchvision.models import ResNet50_Weights

    checkpoints = empty_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    cached = checkpoints / ResNet50_Weights.IMAGENET1K_V2.url.rsplit("/", 1)[-1]
    try:
        cached.symlink_to(random_weights)  # same as a copy for the reader, without 100 MB of I/O
    except OSError:  # pragma: no cover - no symlinks here
        shutil.copyfile(random_weights, cached)
    out = tmp_path / "d.png"
    assert main(["demo", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no note: the weights were found
    summary = _one_line(captured.out)
    assert "resnet50" in summary and "classic" not in summary
    cat, _ = samples.cat_sample()
    with Image.open(out) as im:
        assert im.size == (3 * cat.shape[1] + 2 * GAP, cat.shape[0])
    assert no_network == []
