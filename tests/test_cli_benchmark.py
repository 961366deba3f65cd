"""``napari-deepseg benchmark`` end to end on a small synthetic dataset, and its bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from napari_deepseg.cli import main
from _synthetic import write_disk_dataset


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_disk_dataset(tmp_path_factory.mktemp("bench") / "disks", n=3)


def test_clicks_json_and_plot(dataset, tmp_path, capsys):
    out, plot = tmp_path / "r.json", tmp_path / "curves.png"
    assert main(["benchmark", str(dataset), "--features", "rgb", "--json", str(out), "--plot", str(plot)]) == 0
    res = json.loads(out.read_text())
    for key in ("n", "noc85", "noc90", "nof85", "nof90", "miou_at_clicks", "seconds_per_click", "per_image"):
        assert key in res
    assert res["n"] == 3 and len(res["miou_at_clicks"]) == 20
    assert res["noc90"] <= 3
    assert set(res["per_image"]) == {"im0", "im1", "im2"}
    assert res["method"] == "graphcut" and res["features"] == "rgb"
    captured = capsys.readouterr()
    assert "NoC@90" in captured.out
    assert "image" in captured.err  # the progress bar
    with Image.open(plot) as im:
        assert im.size[0] > 400
    # a second run drawn beside the first
    plot2 = tmp_path / "two.png"
    assert main(["benchmark", str(dataset), "--features", "rgb", "--limit", "1", "--max-clicks", "5", "-q",
                 "--plot", str(plot2), "--compare", str(out)]) == 0
    assert plot2.is_file()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("protocol", ["clicks", "box"])
def test_check_promises_counts_every_mask(dataset, tmp_path, capsys, protocol):
    out = tmp_path / "p.json"
    assert main(["benchmark", str(dataset), "--protocol", protocol, "--features", "rgb", "--check-promises",
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    promises = res["promises"]
    clicks = sum(len(r["ious"]) for r in res["per_image"].values())
    assert promises["masks"] == clicks + (3 if protocol == "box" else 0)  # one per click (and box)
    assert promises["broken"] == 0 and res["promise_failures"] == []
    assert "promises: " in capsys.readouterr().out


def test_scribbles_json(dataset, tmp_path):
    out = tmp_path / "s.json"
    assert main(["benchmark", str(dataset), "--protocol", "scribbles", "--scribbles-dir", "scribbles",
                 "--features", "rgb", "-q", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["n"] == 3 and res["miou"] > 0.9 and len(res["per_image"]) == 3


@pytest.mark.parametrize("extra, message", [
    (["--json", "out.txt"], "--json out.txt"),
    (["--plot", "x.gif"], "--plot x.gif"),
    (["--method", "nope"], "unknown method 'nope'"),
    (["--max-clicks", "0"], "--max-clicks"),
    (["--limit", "0"], "--limit"),
    (["--protocol", "scribbles", "--plot", "p.png"], "--protocol clicks"),
    (["--protocol", "scribbles", "--scribbles-dir", "nowhere"], "no scribble file"),
    (["--weights", "w.pth"], "--weights"),
    (["--protocol", "scribbles", "--scribbles-dir", "scribbles", "--check-promises"], "--check-promises"),
])
def test_bad_options_are_one_line(dataset, capsys, extra, message):
    assert main(["benchmark", str(dataset), "--features", "rgb", "-q", *extra]) == 2
    assert message in _one_line(capsys.readouterr().err)


def test_missing_dataset_is_one_line(tmp_path, capsys):
    assert main(["benchmark", str(tmp_path / "none")]) == 2
    assert "does not exist" in _one_line(capsys.readouterr().err)


def test_compare_with_a_scribble_result_is_refused(dataset, tmp_path, capsys):
    bad = tmp_path / "scr.json"
    bad.write_text(json.dumps({"miou": 0.5}))
    assert main(["benchmark", str(dataset), "--features", "rgb", "-q", "--limit", "1", "--max-clicks", "2",
                 "--plot", str(tmp_path / "p.png"), "--compare", str(bad)]) == 2
    assert "no click results" in _one_line(capsys.readouterr().err)
