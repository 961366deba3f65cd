"""Missing weights: the facts the core's error carries, worded for the CLI and for the widgets.

No test touches the network: downloads are replaced by functions that raise the
errors a machine without internet gets.
"""

from __future__ import annotations

import socket
import urllib.error

import pytest

from napari_deepseg.core.io import weights
from napari_deepseg.core.io.weights import WeightsUnavailableError, network_cause, resolve_torchvision_weights

URL = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"


@pytest.fixture
def empty_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    return tmp_path


@pytest.fixture
def offline_download(monkeypatch):
    """torch.hub's download fails as it does with no DNS (and the host counts as reachable)."""
    import torch.hub

    def fail(url, *args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    monkeypatch.setattr(weights, "unreachable_cause", lambda url, timeout=None: None, raising=False)


def test_network_errors_in_words():
    assert network_cause(urllib.error.URLError(socket.gaierror(-2, "x"))) == "no internet connection"
    assert network_cause(urllib.error.URLError(ConnectionRefusedError(111, "refused"))) == "no internet connection"
    assert network_cause(urllib.error.URLError(socket.timeout("timed out"))) == "the download timed out"
    assert network_cause(urllib.error.HTTPError(URL, 403, "Forbidden", None, None)) == "the server answered 403 Forbidden"
    assert network_cause(ValueError("odd")).startswith("download failed: ValueError")


def test_failed_download_carries_the_facts(empty_homes, offline_download):
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_torchvision_weights(URL)
    err = info.value
    assert err.file == "resnet50-11ad3fa6.pth" and err.url == URL and err.cause == "no internet connection"
    assert err.searched and str(empty_homes / "torch") in err.searched[-1]
    cli = str(err)
    assert "\n" not in cli and "URLError" not in cli and "no internet connection" in cli
    assert "--weights PATH" in cli and "$NAPARI_DEEPSEG_WEIGHTS_DIR" in cli
    gui = err.gui_message("weights")
    assert "--weights" not in gui and "choose the file in *weights*" in gui and err.searched[-1] in gui
    assert "NAPARI_DEEPSEG_WEIGHTS_DIR" in gui and "URLError" not in gui
    assert "*weights*" not in err.gui_message(None) and "put it in" in err.gui_message(None)


def test_override_folder_is_named_and_searched(empty_homes, offline_download, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_DEEPSEG_WEIGHTS_DIR", str(tmp_path / "mine"))
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_torchvision_weights(URL)
    assert str(tmp_path / "mine") in info.value.searched[0] and str(tmp_path / "mine") in str(info.value)


def test_option_of_another_command_in_the_cli_wording(empty_homes, offline_download):
    with pytest.raises(WeightsUnavailableError) as info:
        resolve_torchvision_weights(URL)
    info.value.option = "--encoder-weights"
    assert "--encoder-weights PATH" in str(info.value) and "--weights PATH" not in str(info.value)


def test_messages_without_facts_stay_as_they_are():
    err = WeightsUnavailableError("weights file not found: /x.pth")
    assert str(err) == err.gui_message() == "weights file not found: /x.pth"


def test_clip_missing_offline_says_so_for_both_faces(monkeypatch, tmp_path):
    from napari_deepseg.core.features.clip import load_clip_vision

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError) as info:
        load_clip_vision("openai/clip-vit-base-patch32", "cpu")
    err = info.value
    assert err.cause == "HF_HUB_OFFLINE is set" and "openai/clip-vit-base-patch32" in str(err)
    assert "--weights PATH" in str(err) and "save_pretrained" in str(err)
    assert str(tmp_path / "hf") in str(err)  # the cache it looked in
    assert "*weights*" in err.gui_message() and "--weights" not in err.gui_message()


def test_widget_wording_helper():
    pytest.importorskip("napari")
    from napari_deepseg._qt._messages import error_text

    err = WeightsUnavailableError(file="w.pth", url="https://x/w.pth", searched=["/c"], cause="no internet connection")
    assert "choose the file in *weights*" in error_text(err) and "--weights" not in error_text(err)
    assert error_text(ValueError("bad\nmore")) == "bad"
    assert error_text(KeyError("k")) == "KeyError: 'k'"
