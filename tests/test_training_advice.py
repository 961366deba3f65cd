"""Too few labelled pairs, a near-zero validation score: the ``train`` command warns (one line each, stderr)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from napari_deepseg.cli import main
from napari_deepseg.core.models import training
from napari_deepseg.core.models.training.advice import data_advice, score_advice, typical_pairs
from napari_deepseg.core.models.training.synthetic import write_shapes_dataset


@pytest.fixture(autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_advice_rules():
    assert typical_pairs("unet") == 20 and typical_pairs("resnet34-unet") == 10
    assert "only 2" in data_advice("unet", 2) and "20 or more" in data_advice("unet", 2)
    assert data_advice("unet", 20) is None
    assert score_advice("unet", 0.5, 2) is None and score_advice("unet", float("nan"), 2) is None
    low = score_advice("clip-seg", 0.01, 50, "dice")
    assert "near zero" in low and "label more images" not in low  # enough pairs: the data is not the cause
    assert "IoU" in score_advice("pointclip", 0.0, 3, "iou")


def test_train_command_warns_before_and_after(tmp_path, capsys, monkeypatch):
    data = write_shapes_dataset(tmp_path / "ds", n=2, size=32)
    real_fit = training.fit

    def fit_scoring_zero(*args, **kwargs):
        result = real_fit(*args, **kwargs)
        result.best_score = 0.003
        return result

    monkeypatch.setattr(training, "fit", fit_scoring_zero)
    assert main(["train", "unet", str(data), "-o", str(tmp_path / "ck"), "--epochs", "1", "--image-size", "32",
                 "--width", "4", "--batch-size", "1", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    warnings = [line for line in err.splitlines() if line.startswith("napari-deepseg: warning: ")]
    assert len(warnings) == 2, err
    assert "only 2 labelled image/label pairs for unet" in warnings[0] and "20 or more" in warnings[0]
    assert "best validation Dice 0.003 is near zero" in warnings[1]
    # -q: nothing at all
    assert main(["train", "unet", str(data), "-o", str(tmp_path / "ck2"), "--epochs", "1", "--image-size", "32",
                 "--width", "4", "--batch-size", "1", "--device", "cpu", "-q"]) == 0
    assert capsys.readouterr() == ("", "")
