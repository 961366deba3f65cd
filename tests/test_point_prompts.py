"""Point prompts: the clip backbone, points-graphcut, PointCLIP and its training, the CLI faces.

Every CLIP model here is a tiny random ``CLIPVisionConfig`` saved with
``save_pretrained`` to a temporary folder and loaded through the real code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _synthetic import disk_image

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from napari_deepseg.cli import main
from napari_deepseg.core import get_extractor
from napari_deepseg.core.prompts.base import Click, available_click_methods, get_click_method
from napari_deepseg.core.features.clip import grid_layout
from napari_deepseg.core.prompts.files import clicks_by_plane, read_points_csv
from napari_deepseg.core.models.training import (
    TrainOptions,
    available_trainables,
    find_samples,
    fit,
    get_trainable,
    split_samples,
)
from napari_deepseg.core.models.training.checkpoint import STATE_FILE
from napari_deepseg.core.models.training.data import load_sample
from napari_deepseg.core.models.training.synthetic import shapes_sample, write_shapes_dataset
from napari_deepseg.core.io.weights import WeightsUnavailableError


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random 2-layer CLIP vision model (hidden 32, patch 8) in a folder."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", n=12, size=32)


@pytest.fixture(scope="module")
def checkpoint(tiny_clip, shapes, tmp_path_factory):
    """A PointCLIP checkpoint after one epoch on the shapes."""
    out = tmp_path_factory.mktemp("ckpt") / "pc"
    trainer = get_trainable("pointclip", backbone=tiny_clip, image_size=32, device="cpu")
    fit(trainer, find_samples(shapes), out, TrainOptions(epochs=1, batch_size=4))
    return out


def _disk():
    image, truth = disk_image((40, 48), channels=3, dtype=np.uint8, seed=3)
    r, c = np.argwhere(truth).mean(0).round().astype(int)
    return image, truth, Click(int(r), int(c), True)


# =========================================================================== clip backbone
def test_clip_backbone_grid_and_stride(tiny_clip):
    ex = get_extractor("clip", weights=tiny_clip, resolution=64, n_components=0, device="cpu")
    fm = ex.extract(np.random.default_rng(0).random((50, 30, 3)).astype(np.float32))
    assert fm.data.shape == (8, 5, 32) and fm.stride == 7 and fm.image_shape == (50, 30)
    small = get_extractor("clip", weights=tiny_clip, resolution=64, n_components=4, device="cpu")
    assert small.extract(np.zeros((16, 16, 1), np.float32)).data.shape[-1] == 4


def test_grid_layout_covers_the_image():
    stride, gr, gc = grid_layout((321, 481), 32, 448)
    assert gr * stride >= 321 and gc * stride >= 481 and max(gr, gc) == 14


def test_clip_weights_missing_offline_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match="HF_HUB_OFFLINE is set") as info:
        get_extractor("clip", weights="openai/clip-vit-base-patch32", device="cpu").load_model()
    assert "\n" not in str(info.value)
    (tmp_path / "notclip").mkdir()
    with pytest.raises(WeightsUnavailableError, match="cannot load a CLIP vision model"):
        get_extractor("clip", weights=str(tmp_path / "notclip"), device="cpu").load_model()


# =========================================================================== points-graphcut
def test_click_methods_registered():
    assert {"pointclip", "points-graphcut"} <= set(available_click_methods())


@pytest.mark.parametrize("features", ["classic", "rgb"])
def test_points_graphcut_one_click(features):
    image, truth, click = _disk()
    method = get_click_method("points-graphcut", features=features)
    method.set_image(image)
    mask = method.predict([click])
    assert mask.dtype == bool and mask.shape == truth.shape
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    # a negative click inside the object removes its neighbourhood, the rest stays
    neg = method.predict([click, Click(click.row, click.col + 8, False)])
    assert not neg[click.row, click.col + 8] and neg[click.row, click.col]


def test_points_graphcut_on_clip_features(tiny_clip):
    image, truth, click = _disk()
    method = get_click_method("points-graphcut", features="clip", weights=tiny_clip, device="cpu")
    method.set_image(image)
    mask = method.predict([click])
    assert mask[click.row, click.col] and mask.shape == truth.shape


def test_points_graphcut_bad_inputs():
    image, _, click = _disk()
    method = get_click_method("points-graphcut", features="classic")
    with pytest.raises(RuntimeError, match="set_image"):
        method.predict([click])
    method.set_image(image)
    with pytest.raises(ValueError, match="outside"):
        method.predict([click, Click(400, 3, False)])
    with pytest.raises(ValueError, match="positive"):
        method.predict([Click(3, 3, False)])
    method.set_image(image[:20, :20])  # another image: its own size is checked
    with pytest.raises(ValueError, match="outside the 20x20 image"):
        method.predict([Click(30, 30, True)])
    with pytest.raises(ValueError, match="weights are only used"):
        get_click_method("points-graphcut", features="classic", weights="x.pth")
    with pytest.raises(ValueError, match="lam"):
        get_click_method("points-graphcut", features="classic", lam=0)


# =========================================================================== prompts
def test_read_points_csv(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("row,col,positive\n3,4,1\n5.6,2,false\n")
    coords, pos = read_points_csv(p)
    assert coords.tolist() == [[3, 4], [5.6, 2]] and pos.tolist() == [True, False]
    assert clicks_by_plane(coords, pos, (10, 10))[()] == [Click(3, 4, True), Click(6, 2, False)]
    stack = tmp_path / "s.csv"
    stack.write_text("1,3,4,yes\n")
    assert list(clicks_by_plane(*read_points_csv(stack), (2, 10, 10))) == [(1,)]


@pytest.mark.parametrize("text, match", [
    ("", "no points"), ("row,col,positive\n1,2\n", "3 columns|column"), ("1,2,maybe\n", "positive must be"),
    ("1,x,1\n", "not a number"), ("1,2,1\n1,2,3,1\n", "columns"),
])
def test_read_points_csv_bad(tmp_path, text, match):
    p = tmp_path / "p.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_points_csv(p)


def test_clicks_by_plane_bad():
    with pytest.raises(ValueError, match="outside"):
        clicks_by_plane([[20, 1]], [True], (10, 10))
    with pytest.raises(ValueError, match="3 coordinates"):
        clicks_by_plane([[0, 1, 1]], [True], (10, 10))


# =========================================================================== datasets
def test_find_samples_pet_layout(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "annotations" / "trimaps").mkdir(parents=True)
    image, mask = shapes_sample(24, seed=0)
    trimap = np.where(mask > 0, 1, 2).astype(np.uint8)
    trimap[0, :] = 3
    Image.fromarray(image).convert("CMYK").save(tmp_path / "images" / "cat_1.jpg")
    Image.fromarray(trimap).save(tmp_path / "annotations" / "trimaps" / "cat_1.png")
    Image.fromarray(trimap).save(tmp_path / "annotations" / "trimaps" / "._cat_1.png")  # macOS junk
    (samples,) = find_samples(tmp_path)
    assert samples.layout == "pet"
    img, target = load_sample(samples, 16)
    assert img.shape == (16, 16, 3) and set(np.unique(target)) <= {0, 1, 255} and (target[0] == 255).all()


def test_find_samples_bad(tmp_path):
    with pytest.raises(ValueError, match="images/"):
        find_samples(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="neither masks"):
        find_samples(tmp_path)
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="no image"):
        find_samples(tmp_path)
    with pytest.raises(ValueError, match="at least 2"):
        split_samples([1])


# =========================================================================== PointCLIP
def test_trainables_registry():
    assert "pointclip" in available_trainables()
    with pytest.raises(ValueError, match="unknown model"):
        get_trainable("nope")


def test_checkpoint_and_predictor(checkpoint, shapes):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "last.safetensors", "optimizer.safetensors", "state.json"} <= names
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model"] == "pointclip" and config["image_size"] == 32
    method = get_click_method("pointclip", checkpoint=str(checkpoint), device="cpu")
    image, _ = shapes_sample(40, seed=99)
    method.set_image(image)
    mask = method.predict([Click(20, 20, True), Click(1, 1, False)])
    assert mask.shape == (40, 40) and mask.dtype == bool
    with pytest.raises(ValueError, match="outside"):
        method.predict([Click(50, 1, True)])


def test_resume_continues_and_refuses_overwrite(tiny_clip, shapes, tmp_path):
    trainer = get_trainable("pointclip", backbone=tiny_clip, image_size=32, device="cpu")
    samples = find_samples(shapes)
    reports = []
    fit(trainer, samples, tmp_path / "run", TrainOptions(epochs=1, batch_size=4), progress=reports.append)
    with pytest.raises(ValueError, match="--resume"):
        fit(trainer, samples, tmp_path / "run", TrainOptions(epochs=2, batch_size=4))
    fit(trainer, samples, tmp_path / "run", TrainOptions(epochs=2, batch_size=4), resume=True,
        progress=reports.append)
    assert [r.epoch for r in reports] == [1, 2]
    assert json.loads((tmp_path / "run" / STATE_FILE).read_text())["epoch"] == 2
    other = get_trainable("pointclip", backbone=tiny_clip, image_size=16, device="cpu")
    with pytest.raises(ValueError, match="another model or configuration"):
        fit(other, samples, tmp_path / "run", TrainOptions(epochs=3, batch_size=4), resume=True)


def test_bad_checkpoints_are_one_line(checkpoint, tmp_path):
    import shutil

    with pytest.raises(ValueError, match="needs a trained checkpoint"):
        get_click_method("pointclip")
    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read checkpoint file"):
        get_click_method("pointclip", checkpoint=str(bad), device="cpu").set_image(np.zeros((8, 8)))
    wrong = tmp_path / "wrong"
    shutil.copytree(checkpoint, wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["token_width"] = 8
    (wrong / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not fit the model's architecture") as info:
        get_click_method("pointclip", checkpoint=str(wrong), device="cpu").set_image(np.zeros((8, 8)))
    assert "\n" not in str(info.value)


# =========================================================================== command line
def test_cli_train_and_segment_points(tiny_clip, shapes, tmp_path, capsys):
    out = tmp_path / "ck"
    rc = main(["train", "pointclip", str(shapes), "-o", str(out), "--backbone", tiny_clip, "--image-size", "32",
               "--epochs", "1", "--batch-size", "6", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and "epoch 1/1" in err and (out / "model.safetensors").is_file()
    assert main(["train", "pointclip", str(shapes), "-o", str(out), "--backbone", tiny_clip]) == 2
    assert "--resume" in capsys.readouterr().err
    points = tmp_path / "p.csv"
    points.write_text("row,col,positive\n16,16,1\n1,1,0\n")
    image = shapes / "images" / "0000.png"
    for method in (["--method", "pointclip", "--checkpoint", str(out), "--device", "cpu"],
                   ["--method", "points-graphcut", "--features", "classic"]):
        mask_file = tmp_path / "mask.png"
        assert main(["segment", str(image), "--points", str(points), *method, "-o", str(mask_file), "-q"]) == 0
        from napari_deepseg.core.io.files import read_labels

        assert read_labels(mask_file).shape == (32, 32)


def test_cli_segment_points_errors(tmp_path, shapes, capsys):
    image = shapes / "images" / "0000.png"
    points = tmp_path / "p.csv"
    points.write_text("row,col,positive\n1,1,0\n")
    assert main(["segment", str(image), "--points", str(points), "-o", str(tmp_path / "m.png")]) == 2
    assert "no positive point" in capsys.readouterr().err
    points.write_text("row,col,positive\n99,1,1\n")
    assert main(["segment", str(image), "--points", str(points), "-o", str(tmp_path / "m.png")]) == 2
    assert "outside" in capsys.readouterr().err
    points.write_text("row,col,positive\n9,1,1\n")
    assert main(["segment", str(image), "--points", str(points), "--method", "pointclip",
                 "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint" in err
    # neither --scribbles nor --points nor --box: one line, exit 2
    assert main(["segment", str(image), "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--points" in err and "--box" in err
