"""Messages that said the wrong thing: a folder as the image, a text file as weights, a sub-command's unknown
option, ``segment --help`` without defaults."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_deepseg.cli import build_parser, main
from napari_deepseg.core.io.files import read_image, read_labels


@pytest.fixture
def files(tmp_path):
    image = np.zeros((16, 20, 3), np.uint8)
    image[4:12, 5:15] = 200
    scribbles = np.zeros((16, 20), np.uint8)
    scribbles[8, 10], scribbles[0, 0] = 1, 2
    Image.fromarray(image).save(tmp_path / "img.png")
    Image.fromarray(scribbles).save(tmp_path / "scr.png")
    return tmp_path


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_a_folder_is_said_to_be_a_folder(tmp_path, capsys, files):
    for reader, what in ((read_image, "image"), (read_labels, "label")):
        with pytest.raises(ValueError) as info:
            reader(tmp_path)
        assert "is a folder" in str(info.value) and "not found" not in str(info.value) and what in str(info.value)
    assert main(["segment", str(tmp_path), "--scribbles", str(files / "scr.png"), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "is a folder, not a file" in err and "not found" not in err


@pytest.mark.parametrize("content", [b"some text\nmore\n", b"weights", b""])
def test_a_text_file_as_weights_is_said_to_be_one(files, capsys, content):
    weights = files / "w.txt"
    weights.write_bytes(content)
    assert main(["segment", str(files / "img.png"), "--scribbles", str(files / "scr.png"), "-o",
                 str(files / "o.png"), "--features", "resnet50", "--weights", str(weights), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not a checkpoint" in err and "IndexError" not in err and "KeyError" not in err, err
    assert ("text file" if content else "empty") in err


def test_a_file_as_clip_weights(files, capsys):
    weights = files / "w.txt"
    weights.write_text("hello")
    assert main(["segment", str(files / "img.png"), "--scribbles", str(files / "scr.png"), "-o",
                 str(files / "o.png"), "--features", "clip", "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "save_pretrained" in err and "not found" not in err


def test_unknown_option_points_to_the_sub_command_help(files, capsys):
    err = _error(capsys, ["segment", str(files / "img.png"), "--scribbles", str(files / "scr.png"), "-o",
                          str(files / "o.png"), "--bogus"])
    assert "napari-deepseg segment: error: unrecognized arguments: --bogus" in err
    assert "(see napari-deepseg segment --help)" in err
    err = _error(capsys, ["bogus"])
    assert "(see napari-deepseg --help)" in err


def test_segment_help_shows_the_defaults():
    sub = build_parser()._subparsers._group_actions[0].choices["segment"]
    text = sub.format_help()
    for shown in ("(default: classic)", "(default: default)", "(default: 1)", "(default: auto)",
                  "(default 1024", "(default: the preset's, 20 for default, 1 for seed)"):
        assert shown in " ".join(text.split()), shown
    assert "(default: None)" not in text and "(default: False)" not in text
