"""Segmentation training (issue 7): data, augmentation, losses, networks, the loop, prediction, robustness, CLI, DDP.

Every model is tiny (32-pixel images, a few channels) so the whole file runs in
seconds; weights are random and go through the real loading code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image

from napari_deepseg.cli import main
from napari_deepseg.core.models.predict import SegmentationModel
from napari_deepseg.core.utils.progress import Cancelled, CancelToken
from napari_deepseg.core.models.robustness import (
    LEVELS,
    PERTURBATIONS,
    perturb,
    plot_robustness,
    robustness_study,
)
from napari_deepseg.core.models.training import (
    IGNORE,
    ArraySample,
    TrainOptions,
    available_trainables,
    find_samples,
    fit,
    get_trainable,
)
from napari_deepseg.core.models.training.augment import Augmentation, augment_batch
from napari_deepseg.core.models.training.checkpoint import (
    MODEL_FILE,
    load_checkpoint,
    save_checkpoint,
)
from napari_deepseg.core.models.training.data import load_sample, target_from_annotation
from napari_deepseg.core.models.training.distributed import DistContext, shard
from napari_deepseg.core.models.training.loop import scheduled_lr
from napari_deepseg.core.models.training.networks import build_network
from napari_deepseg.core.models.training.segmentation import (
    ce_dice_loss,
    dice_bce_loss,
    segmentation_config,
)
from napari_deepseg.core.models.training.synthetic import shapes_sample, write_shapes_dataset

SEG_MODELS = ("unet", "resnet34-unet", "clip-seg", "autoencoder")
TINY = {"unet": {"width": 4}, "resnet34-unet": {"width": 4, "encoder_weights": "none"},
        "autoencoder": {"width": 4, "pretrain_epochs": 1}}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes_dataset(tmp_path_factory.mktemp("seg") / "shapes", n=12, size=32, distractor=0)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def unet_ckpt(shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "unet"
    fit(get_trainable("unet", image_size=32, device="cpu", width=4), find_samples(shapes), out,
        TrainOptions(epochs=1, batch_size=4))
    return out


# ------------------------------------------------------------------------------------------ data
def test_registry_lists_the_segmentation_models():
    assert set(SEG_MODELS) | {"pointclip"} <= set(available_trainables())


def test_multiclass_targets_and_array_samples():
    pet = target_from_annotation(np.array([[1, 2, 3]]), "pet", classes=3)
    assert pet.tolist() == [[1, 0, 2]]
    labels = np.array([[0, 1], [2, 9]])
    assert target_from_annotation(labels, "array").tolist() == [[0, 1], [1, 1]]
    assert target_from_annotation(labels, "array", classes=3).tolist() == [[0, 1], [2, IGNORE]]
    assert target_from_annotation(labels, "array", ignore=9).tolist() == [[0, 1], [1, IGNORE]]
    image, target = load_sample(ArraySample("a", np.zeros((10, 12), np.uint16), labels.repeat(5, 0).repeat(6, 1)), 8)
    assert image.shape == (8, 8, 3) and target.shape == (8, 8)
    with pytest.raises(ValueError, match="classes"):
        target_from_annotation(labels, "masks", classes=1)
    with pytest.raises(ValueError, match="its labels"):
        load_sample(ArraySample("a", np.zeros((10, 12)), np.zeros((5, 5))), 8)


def test_augmentation_moves_image_and_target_together():
    image, mask = shapes_sample(32, seed=3, distractor=0)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    y = torch.from_numpy((mask > 0).astype(np.int64))[None]
    aug = Augmentation(brightness=0, contrast=0, saturation=0, noise=0, rotation=0, scale=(1, 1), ratio=(1, 1),
                       hflip=1.0)
    xa, ya = augment_batch(x, y, np.random.default_rng(0), aug)
    assert torch.equal(ya, y.flip(-1)) and torch.allclose(xa, x.flip(-1), atol=1e-5)
    xr, yr = augment_batch(x.repeat(4, 1, 1, 1), y.repeat(4, 1, 1), np.random.default_rng(1), Augmentation())
    assert set(yr.unique().tolist()) <= {0, 1, IGNORE} and 0 <= float(xr.min()) and float(xr.max()) <= 1
    # labels follow the image: object pixels stay brighter-coloured where the shape moved
    assert (yr == 1).sum() > 0


def test_losses_prefer_the_right_answer():
    t = torch.tensor([[[0, 1], [1, IGNORE]]])
    right = torch.tensor([[[[-8.0, 8.0], [8.0, -8.0]]]])
    assert float(dice_bce_loss(right, t)) < 0.01 < float(dice_bce_loss(-right, t))
    t3 = torch.tensor([[[0, 1], [2, IGNORE]]])
    good = torch.nn.functional.one_hot(t3.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 20
    assert float(ce_dice_loss(good, t3)) < 0.01 < float(ce_dice_loss(-good, t3))


def test_cosine_schedule_and_sharding():
    o = TrainOptions(epochs=5, lr=0.1, schedule="cosine")
    lrs = [scheduled_lr(o, e) for e in range(5)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.001) and lrs == sorted(lrs, reverse=True)
    assert scheduled_lr(TrainOptions(lr=0.1), 3) == 0.1
    with pytest.raises(ValueError, match="schedule"):
        TrainOptions(schedule="steps")
    parts = [shard(list(range(9)), DistContext(r, 2)) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 4 and not set(parts[0]) & set(parts[1])


# -------------------------------------------------------------------------------------- networks
@pytest.mark.parametrize("arch", SEG_MODELS)
@pytest.mark.parametrize("classes, extra", [(2, []), (3, ["sobel"])])
def test_networks_give_logits_at_input_size(arch, classes, extra, tiny_clip):
    from napari_deepseg.core.features.clip import load_clip_vision

    cfg = segmentation_config(arch, 32, classes, 4, extra)
    clip = load_clip_vision(tiny_clip) if arch == "clip-seg" else None
    net = build_network(cfg, clip=clip).eval()
    out = net(torch.rand(2, cfg["in_channels"], 32, 64))
    assert out.shape == (2, 1 if classes == 2 else classes, 32, 64)
    if arch == "clip-seg":
        assert not any(k.startswith("clip") for k in net.state_dict())


def test_config_bad_inputs():
    with pytest.raises(ValueError, match="multiple of 32"):
        segmentation_config("unet", 48, 2, None, ())
    with pytest.raises(ValueError, match="classes"):
        segmentation_config("unet", 64, 1, None, ())
    with pytest.raises(ValueError, match="extra channel"):
        segmentation_config("unet", 64, 2, None, "edges")
    with pytest.raises(ValueError, match="architecture"):
        build_network({"model": "vgg"})


def test_resnet_encoder_weights_from_file_and_offline(tmp_path, monkeypatch, no_network):
    import torchvision

    ref = torchvision.models.resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(ref.state_dict(), path)
    tr = get_trainable("resnet34-unet", image_size=32, device="cpu", width=4, encoder_weights=str(path),
                       extra_channels="sobel")
    conv = tr.net.encoder.conv1.weight
    assert torch.equal(conv[:, :3], ref.conv1.weight) and not conv[:, 3:].any()
    assert torch.equal(tr.net.encoder.layer4[0].conv1.weight, ref.layer4[0].conv1.weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    notes = []
    get_trainable("resnet34-unet", image_size=32, device="cpu", width=4, log=notes.append)
    assert no_network and "random weights" in notes[0]
    with pytest.raises(Exception, match="resnet34"):
        get_trainable("resnet34-unet", image_size=32, device="cpu", width=4, encoder_weights="imagenet")
    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a ResNet-34"):
        get_trainable("resnet34-unet", image_size=32, device="cpu", width=4, encoder_weights=str(bad))


# ------------------------------------------------------------------------------------------ loop
def test_unet_learns_the_shapes(tmp_path):
    """A small version of benchmarks/train_synthetic.py: the model really learns."""
    root = write_shapes_dataset(tmp_path / "ds", n=40, size=32, distractor=0)
    tr = get_trainable("unet", image_size=32, device="cpu", width=8)
    reports = []
    result = fit(tr, find_samples(root), tmp_path / "ck", TrainOptions(epochs=10, batch_size=8, lr=3e-3,
                                                                      schedule="cosine", patience=10),
                 progress=reports.append)
    assert reports[0].val["dice"] < 0.5 < result.best_score
    model = SegmentationModel(tmp_path / "ck", device="cpu")
    image, mask = shapes_sample(32, seed=999, distractor=0)
    pred = model.predict(image)
    assert pred.shape == mask.shape and set(np.unique(pred)) <= {0, 1}


@pytest.mark.parametrize("name", ["resnet34-unet", "autoencoder"])
def test_other_models_train_one_epoch(name, shapes, tmp_path):
    notes = []
    tr = get_trainable(name, image_size=32, device="cpu", log=notes.append, **TINY[name])
    before = {k: v.clone() for k, v in tr.net.state_dict().items()}
    result = fit(tr, find_samples(shapes), tmp_path / name, TrainOptions(epochs=1, batch_size=4), log=notes.append)
    state, config = load_checkpoint(tmp_path / name)
    assert result.best_epoch == 1 and config["model"] == name and 0 <= config["val"]["dice"] <= 1
    if name == "autoencoder":
        assert any("reconstruction" in n for n in notes)
        enc = [k for k in before if k.startswith("encoder.") and "num_batches" not in k]
        assert all(torch.equal(tr.net.state_dict()[k], state[k]) for k in enc)  # frozen after pretraining
        assert any(not torch.equal(before[k], state[k]) for k in enc)  # ... but changed by it
        assert not any(p.requires_grad for p in tr.net.encoder.parameters())


@pytest.mark.parametrize("n, batch_size", [(4, 2), (2, 4)])
def test_resnet34_unet_trains_a_lone_last_image(n, batch_size, tmp_path):
    """Issue 23: at 32 px a one-image batch leaves BatchNorm one value per channel (layer4 is 1x1).

    4 images = 3 training images in batches of 2 (a lone last image); 2 images = one training image.
    """
    root = write_shapes_dataset(tmp_path / "ds", n=n, size=32, distractor=0)
    tr = get_trainable("resnet34-unet", image_size=32, device="cpu", **TINY["resnet34-unet"])
    seen = []
    tr.net.encoder.layer4.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]) if m.training else None)
    before = {k: v.clone() for k, v in tr.net.state_dict().items()}
    result = fit(tr, find_samples(root), tmp_path / "ck", TrainOptions(epochs=1, batch_size=batch_size))
    state, config = load_checkpoint(tmp_path / "ck")
    assert result.best_epoch == 1 and np.isfinite(result.history[0]["train_loss"])
    assert seen == ([2, 2] if n == 4 else [2])  # the lone image went in as two augmented copies
    assert any(not torch.equal(before[k], state[k]) for k in before if "num_batches" not in k)
    larger = get_trainable("resnet34-unet", image_size=64, device="cpu", **TINY["resnet34-unet"])
    assert not larger.lone_image_repeated()  # layer4 is 2x2 there: a lone image trains as it is


def test_clip_seg_trains_and_predicts(tiny_clip, shapes, tmp_path):
    tr = get_trainable("clip-seg", backbone=tiny_clip, image_size=32, device="cpu", width=4)
    fit(tr, find_samples(shapes), tmp_path / "cs", TrainOptions(epochs=1, batch_size=4))
    state, config = load_checkpoint(tmp_path / "cs")
    assert config["patch_size"] == 8 and not any(k.startswith("clip") for k in state)
    pred = SegmentationModel(tmp_path / "cs", device="cpu").predict(np.zeros((20, 30, 3), np.uint8))
    assert pred.shape == (20, 30)


def test_multiclass_with_extra_channel(tmp_path):
    root = tmp_path / "mc"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(6):
        image, mask = shapes_sample(32, seed=k, distractor=0)
        labels = (mask > 0).astype(np.uint8) * (1 + k % 2)
        Image.fromarray(image).save(root / "images" / f"{k}.png")
        Image.fromarray(labels).save(root / "masks" / f"{k}.png")
    tr = get_trainable("unet", image_size=32, device="cpu", width=4, classes=3, extra_channels=["sobel"])
    fit(tr, find_samples(root), tmp_path / "ck", TrainOptions(epochs=1, batch_size=3))
    model = SegmentationModel(tmp_path / "ck", device="cpu")
    assert model.classes == 3 and model.config["in_channels"] == 4
    pred = model.predict(np.asarray(Image.open(root / "images" / "0.png")))
    assert set(np.unique(pred)) <= {0, 1, 2}
    assert model.probabilities(np.zeros((9, 9))).shape == (3, 9, 9)


def test_resume_and_cancel_keep_the_checkpoint(shapes, tmp_path):
    out = tmp_path / "run"
    tr = get_trainable("unet", image_size=32, device="cpu", width=4)
    fit(tr, find_samples(shapes), out, TrainOptions(epochs=1, batch_size=4))
    saved = (out / MODEL_FILE).read_bytes()
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        fit(tr, find_samples(shapes), out, TrainOptions(epochs=2, batch_size=4))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        fit(tr, find_samples(shapes), out, TrainOptions(epochs=3, batch_size=4), resume=True, cancel=token)
    assert (out / MODEL_FILE).read_bytes() == saved
    result = fit(tr, find_samples(shapes), out, TrainOptions(epochs=2, batch_size=4), resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    other = get_trainable("unet", image_size=32, device="cpu", width=8)
    with pytest.raises(ValueError, match="another model or configuration"):
        fit(other, find_samples(shapes), out, TrainOptions(epochs=3, batch_size=4), resume=True)


# ------------------------------------------------------------------------------------ prediction
def test_predict_geometry_tiles_and_stacks(unet_ckpt):
    model = SegmentationModel(unet_ckpt, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    seen = []
    tiled = model.predict(image, scale=1.0, tile=32, overlap=8, progress=lambda d, t, m="": seen.append(t))
    assert tiled.shape == (70, 90) and max(seen) > 1
    assert model.predict(image, scale=0.5).shape == (70, 90)
    stack = model.predict_stack(np.stack([image[..., 0]] * 3))
    assert stack.shape == (3, 70, 90)
    with pytest.raises(ValueError, match="scale"):
        model.predict(image, scale=0)
    with pytest.raises(ValueError, match="tile"):
        model.predict(image, scale=1.0, tile=8)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        model.predict(image, cancel=token)


def test_predict_refuses_bad_checkpoints(tmp_path, unet_ckpt):
    with pytest.raises(ValueError, match="not found"):
        SegmentationModel(tmp_path / "none")
    save_checkpoint(tmp_path / "pc", {"w": torch.zeros(1)}, {"model": "pointclip"})
    with pytest.raises(ValueError, match="not a segmentation model"):
        SegmentationModel(tmp_path / "pc")
    cfg = json.loads((unet_ckpt / "config.json").read_text())
    save_checkpoint(tmp_path / "wide", {"w": torch.zeros(1)}, {**cfg, "width": 8})
    with pytest.raises(ValueError, match="does not fit"):
        SegmentationModel(tmp_path / "wide")
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"junk")
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="cannot read"):
        SegmentationModel(bad)


# ------------------------------------------------------------------------------------ robustness
@pytest.mark.parametrize("name", PERTURBATIONS)
def test_perturbations_grow_with_strength(name):
    image = shapes_sample(48, seed=1)[0].astype(np.float32) / 255
    diffs = [float(np.abs(perturb(image, name, s, np.random.default_rng(0)) - image).mean()) for s in LEVELS[name]]
    assert diffs[0] > 0 and diffs[-1] > diffs[0]
    assert perturb(image, name, 0, np.random.default_rng(0)).tolist() == image.tolist()
    with pytest.raises(ValueError, match="strength"):
        perturb(image, name, -1, np.random.default_rng(0))


def test_robustness_study_table_and_plot(unet_ckpt, shapes, tmp_path):
    model = SegmentationModel(unet_ckpt, device="cpu")
    result = robustness_study(model, find_samples(shapes)[:2], ["gaussian_blur", "occlusion"],
                              levels={"gaussian_blur": (1, 4), "occlusion": (0.3,)})
    assert [r["perturbation"] for r in result.rows] == ["none", "gaussian_blur", "gaussian_blur", "occlusion"]
    assert all(0 <= r["dice"] <= 1 and r["images"] == 2 for r in result.rows)
    assert "gaussian_blur" in result.table()
    plot_robustness(result, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown perturbation"):
        robustness_study(model, find_samples(shapes), ["fog"])


# ------------------------------------------------------------------------------------------- CLI
def test_cli_train_predict_robustness(shapes, tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(["train", "unet", str(shapes), "-o", str(ck), "--image-size", "32", "--width", "4",
                 "--epochs", "1", "--batch-size", "4", "--no-augment"]) == 0
    assert "val dice" in capsys.readouterr().err
    assert json.loads((ck / "config.json").read_text())["model"] == "unet"
    image = shapes / "images" / "0000.png"
    out = tmp_path / "out"
    assert main(["predict", str(ck), str(image), str(shapes / "images"), "-o", str(out)]) == 2
    assert "same stem" in capsys.readouterr().err
    tif = tmp_path / "stack.tif"
    import tifffile

    tifffile.imwrite(tif, np.zeros((2, 20, 24), np.uint8))
    assert main(["predict", str(ck), str(image), str(tif), "-o", str(out)]) == 0
    assert np.asarray(Image.open(out / "0000.png")).shape == (32, 32)
    assert tifffile.imread(out / "stack.tif").shape == (2, 20, 24)
    js, png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["robustness", str(ck), str(shapes), "--limit", "2", "--perturbations", "contrast",
                 "--json", str(js), "--plot", str(png)]) == 0
    assert "contrast" in capsys.readouterr().out
    assert len(json.loads(js.read_text())["rows"]) == 1 + len(LEVELS["contrast"]) and png.is_file()


@pytest.mark.parametrize("argv, message", [
    (["train", "unet", "DS", "-o", "OUT", "--backbone", "x"], "--backbone is not an option"),
    (["train", "unet", "DS", "-o", "OUT", "--image-size", "40"], "multiple of 32"),
    (["train", "unet", "/nonexistent", "-o", "OUT"], "does not exist"),
    (["predict", "CK", "/nonexistent.png", "-o", "OUT"], "input not found"),
    (["predict", "DS", "IMG", "-o", "OUT"], "checkpoint"),
    (["robustness", "CK", "DS", "--perturbations", "fog"], "unknown"),
    (["robustness", "CK", "DS", "--plot", "x.txt"], "--plot"),
])
def test_cli_bad_inputs(argv, message, shapes, unet_ckpt, tmp_path, capsys):
    subst = {"DS": str(shapes), "OUT": str(tmp_path / "o"), "CK": str(unet_ckpt), "IMG": str(shapes / "images")}
    assert main([subst.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------- DDP
def test_torchrun_two_cpu_processes_agree(shapes, tmp_path):
    """The unchanged CLI under torchrun: gloo, 2 processes, DDP, rank 0 writes, the weights agree."""
    script = Path(sys.executable).with_name("napari-deepseg")
    if not script.is_file():
        pytest.skip("the napari-deepseg script is not installed next to this Python")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
         "train", "unet", str(shapes), "-o", str(out), "--image-size", "32", "--width", "4", "--epochs", "1",
         "--batch-size", "2", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 processes" in proc.stderr and "hold the same weights" in proc.stderr
    assert proc.stderr.count("epoch 1/1") == 1  # only rank 0 reports
    _, config = load_checkpoint(out)
    assert config["model"] == "unet" and json.loads((out / "state.json").read_text())["epoch"] == 1
