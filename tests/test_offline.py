"""No network: a missing checkpoint fails in a second or two, with one line on stderr and nothing on stdout.

Nothing here reaches the network: "offline" is a proxy on a local port where
nothing listens (``HTTPS_PROXY=http://127.0.0.1:9``), so every connection is
refused at once, and the caches (``TORCH_HOME``, ``HF_HOME``) are empty folders.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_deepseg.core.features import clip
from napari_deepseg.core.io.weights import NO_INTERNET, WeightsUnavailableError, unreachable_cause

SRC = str(Path(__file__).resolve().parents[1] / "src")
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there


def offline_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(TORCH_HOME=str(tmp_path / "torch"), HF_HOME=str(tmp_path / "hf"), HTTPS_PROXY=CLOSED,
               HTTP_PROXY=CLOSED, https_proxy=CLOSED, http_proxy=CLOSED, NO_PROXY="", no_proxy="",
               PYTHONPATH=SRC + os.pathsep + env.get("PYTHONPATH", ""))
    env.pop("NAPARI_DEEPSEG_WEIGHTS_DIR", None)
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    return env


def run_cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "napari_deepseg.cli", *args], env=offline_env(tmp_path),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


@pytest.fixture
def files(tmp_path):
    from PIL import Image

    from napari_deepseg.core.io.files import write_labels

    image = np.zeros((32, 40, 3), np.uint8)
    image[8:24, 10:30] = 200
    scribbles = np.zeros((32, 40), np.uint8)
    scribbles[16, 20], scribbles[1, 1] = 1, 2
    Image.fromarray(image).save(tmp_path / "img.png")
    write_labels(tmp_path / "scr.png", scribbles)
    for i in range(2):
        (tmp_path / "ds" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "ds" / "images" / f"a{i}.png")
        write_labels(tmp_path / "ds" / "masks" / f"a{i}.png", (scribbles == 1).astype(np.uint8))
    return tmp_path


def _one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # no retry lines, no download line
    for word in words:
        assert word in lines[0], lines[0]


# --------------------------------------------------------------------------- the probe
def test_probe_refused_port_is_no_internet():
    assert unreachable_cause("https://127.0.0.1:9/x", timeout=1.0) == NO_INTERNET


def test_probe_reaches_a_listening_host():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert unreachable_cause(f"https://127.0.0.1:{port}/x", timeout=1.0) is None


def test_probe_goes_through_the_proxy(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("NO_PROXY", "")
        assert unreachable_cause("https://127.0.0.1:9/x", timeout=1.0) is None  # the proxy answers
    monkeypatch.setenv("HTTPS_PROXY", CLOSED)
    assert unreachable_cause("https://example.invalid/x", timeout=1.0) == NO_INTERNET


# --------------------------------------------------------------------------- CLIP
def test_clip_without_network_never_asks_the_hub(monkeypatch, tmp_path):
    transformers = pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(clip, "unreachable_cause", lambda url, timeout=None: NO_INTERNET)

    def refuse(*args, **kwargs):
        raise AssertionError("asked the hub although it is unreachable")

    monkeypatch.setattr(transformers.CLIPVisionModel, "from_pretrained", refuse)
    with pytest.raises(WeightsUnavailableError) as info:
        clip.load_clip_vision("openai/clip-vit-base-patch32", "cpu")
    assert info.value.cause == NO_INTERNET and "no internet connection" in str(info.value)


def test_clip_segment_offline_is_one_line(files):
    proc = run_cli(files, "segment", "img.png", "--scribbles", "scr.png", "-o", "out.png", "--features", "clip",
                   "-q")
    _one_line_error(proc, "no internet connection", "openai/clip-vit-base-patch32", "--weights PATH")
    assert not (files / "out.png").exists()


def test_clip_seg_training_offline_is_one_line(files):
    proc = run_cli(files, "train", "clip-seg", "ds", "-o", "ck", "--epochs", "1", "-q")
    _one_line_error(proc, "no internet connection", "--backbone PATH")


# --------------------------------------------------------------------------- torchvision checkpoints
@pytest.mark.parametrize("features, file", [("resnet50", "resnet50-11ad3fa6.pth"),
                                            ("saliency", "vgg16-397923af.pth")])
def test_pretrained_backbone_offline_is_one_line_and_quiet(files, features, file):
    proc = run_cli(files, "segment", "img.png", "--scribbles", "scr.png", "-o", "out.png", "--features", features,
                   "-q")
    _one_line_error(proc, "no internet connection", file, "--weights PATH")
    assert "Downloading" not in proc.stderr
    assert not (files / "out.png").exists()


def test_torchvision_download_line_goes_to_stderr(monkeypatch, tmp_path, capsys):
    """When a download does start, torch.hub's "Downloading: ..." line is not on stdout."""
    import torch.hub

    from napari_deepseg.core.io import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(weights, "unreachable_cause", lambda url, timeout=None: None)

    def fake_download(url, *args, **kwargs):
        sys.stdout.write(f'Downloading: "{url}" to {tmp_path}\n')
        return {"w": 1}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_download)
    assert weights.resolve_torchvision_weights("https://download.pytorch.org/models/x.pth") == {"w": 1}
    out, err = capsys.readouterr()
    assert out == "" and "Downloading" in err
