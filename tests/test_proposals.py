"""DeepLabV3 proposals: classes, lean inference, the real weights loader, tiling, seeds, the command.

Networks are torchvision's DeepLabV3-MobileNetV3 with *random* weights saved to a
temporary folder and loaded through the plugin's loader; no test touches the network.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _synthetic import disk_image

from napari_deepseg.cli import main
from napari_deepseg.core import WeightsUnavailableError
from napari_deepseg.core.models.inference import (
    blend_weights,
    fold_batchnorm,
    tile_spans,
    tiles,
    to_tensor,
)
from napari_deepseg.core.utils.progress import Cancelled, CancelToken
from napari_deepseg.core.models.proposals import (
    VOC_CLASSES,
    DeepLabProposer,
    Proposal,
    labels_from_logits,
    model_input_shape,
    model_name,
    parse_classes,
    proposal_scribbles,
    refine_proposal,
)
from napari_deepseg.core.io.weights import ENV_WEIGHTS_DIR, weights_file_name

torch = pytest.importorskip("torch")
seg = pytest.importorskip("torchvision.models.segmentation")

MOBILENET = "deeplabv3_mobilenet_v3_large"


def _randomise_batchnorm(net):
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return net


@pytest.fixture(scope="module")
def mobilenet_net():
    torch.manual_seed(0)
    net = seg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, aux_loss=True)
    return _randomise_batchnorm(net).eval()


@pytest.fixture(scope="module")
def mobilenet_file(mobilenet_net, tmp_path_factory):
    """A random checkpoint under torchvision's own file name (with the aux head, as the real one)."""
    folder = tmp_path_factory.mktemp("deeplab")
    path = folder / weights_file_name(seg.DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.url)
    torch.save(mobilenet_net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def proposer(mobilenet_file):
    p = DeepLabProposer(MOBILENET, weights=mobilenet_file, device="cpu", input_size=64)
    p.load_model()
    return p


# ------------------------------------------------------------------------------ names
def test_voc_classes_match_torchvision():
    meta = seg.DeepLabV3_ResNet101_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"]
    assert VOC_CLASSES[1:] == tuple(meta[1:]) and len(VOC_CLASSES) == 21


def test_parse_classes():
    assert parse_classes("pet") == (8, 12)
    assert parse_classes(" Dog , cat ") == (8, 12)
    assert parse_classes(["person", 8]) == (8, 15)
    assert parse_classes(None) == () and parse_classes("") == ()


@pytest.mark.parametrize("bad", ["kitten", "0", "21", "background", "cat,unicorn"])
def test_parse_classes_bad(bad):
    with pytest.raises(ValueError, match="unknown class"):
        parse_classes(bad)


def test_model_names():
    assert model_name("resnet101") == "deeplabv3_resnet101"
    assert model_name("MobileNet") == MOBILENET
    with pytest.raises(ValueError, match="unknown proposal model 'fcn'"):
        model_name("fcn")


def test_model_input_shape():
    assert model_input_shape((375, 500), 520) == (520, 693)
    assert model_input_shape((1000, 400), 520) == (1300, 520)
    assert model_input_shape((10, 20), 0) == (10, 20)


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 8}, "input_size"),
    ({"tile": 32}, "tile"),
    ({"overlap": 600}, "overlap"),
    ({"precision": "float16"}, "precision"),
    ({"model": "unet"}, "unknown proposal model"),
])
def test_proposer_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeepLabProposer(**kwargs)


# ------------------------------------------------------------------------------ lean inference
def test_fold_batchnorm_keeps_the_output(mobilenet_net):
    import copy

    lean = copy.deepcopy(mobilenet_net)
    lean.aux_classifier = None
    folded = fold_batchnorm(lean)
    assert folded > 50
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lean.modules())
    x = torch.rand(1, 3, 72, 88)
    with torch.inference_mode():
        ref = mobilenet_net(x)["out"]
        out = lean.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))["out"]
    assert torch.allclose(ref, out, atol=1e-4, rtol=1e-3)


def test_proposer_logits_equal_torchvision(proposer, mobilenet_net):
    rng = np.random.default_rng(0)
    image = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    ours = proposer.logits(image)  # resized so the shorter side is 64
    with torch.inference_mode():
        ref = mobilenet_net(to_tensor(image / np.float32(255), size=(64, 85), channels_last=False))["out"][0]
    assert ours.shape == (21, 64, 85)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-3)


# ------------------------------------------------------------------------------ loading
def test_weights_from_override_dir(mobilenet_file, monkeypatch, tmp_path, no_network):
    monkeypatch.setenv(ENV_WEIGHTS_DIR, str(mobilenet_file.parent))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    p = DeepLabProposer(MOBILENET, device="cpu", input_size=32)
    result = p.propose(np.zeros((32, 40, 3), np.uint8))
    assert result.labels.shape == (32, 40) and not no_network


def test_missing_weights_never_download(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_WEIGHTS_DIR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    p = DeepLabProposer(MOBILENET, device="cpu", allow_download=False)
    with pytest.raises(WeightsUnavailableError, match="deeplabv3_mobilenet_v3_large-fc3c493d.pth"):
        p.load_model()
    with pytest.raises(WeightsUnavailableError, match="not found"):
        DeepLabProposer(MOBILENET, weights=tmp_path / "nope.pth").load_model()


def test_wrong_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), bad)
    with pytest.raises(ValueError) as info:
        DeepLabProposer(MOBILENET, weights=bad, device="cpu").load_model()
    msg = str(info.value)
    assert "do not fit torchvision's deeplabv3_mobilenet_v3_large" in msg and "missing keys" in msg
    assert "\n" not in msg


def test_checkpoint_without_aux_head_loads(mobilenet_net, tmp_path):
    state = {k: v for k, v in mobilenet_net.state_dict().items() if not k.startswith("aux_classifier.")}
    path = tmp_path / "noaux.pth"
    torch.save(state, path)
    assert DeepLabProposer(MOBILENET, weights=path, device="cpu").load_model().aux_classifier is None


# ------------------------------------------------------------------------------ proposals
def test_propose_multiclass_and_binary(proposer):
    image, _ = disk_image((40, 56), channels=3, dtype=np.uint8)
    multi = proposer.propose(image)
    assert isinstance(multi, Proposal) and not multi.binary
    assert multi.labels.shape == (40, 56) and multi.labels.dtype == np.uint8
    assert multi.labels.max() < 21 and multi.class_names == VOC_CLASSES
    assert np.all((multi.confidence > 0) & (multi.confidence <= 1 + 1e-6))
    pet = proposer.propose(image, classes="pet")
    assert pet.binary and pet.classes == (8, 12) and pet.class_names == ("background", "cat+dog")
    assert set(np.unique(pet.labels)) <= {0, 1}
    assert np.all((pet.object_probability >= 0) & (pet.object_probability <= 1 + 1e-6))
    # the binary label wins where the merged probability beats every other class
    gray = proposer.propose(image[..., 0])
    assert gray.labels.shape == (40, 56)


def test_bfloat16_precision_runs(mobilenet_file):
    p = DeepLabProposer(MOBILENET, weights=mobilenet_file, device="cpu", input_size=32, precision="bfloat16")
    assert p.propose(np.zeros((32, 32, 3), np.uint8)).labels.shape == (32, 32)


def test_labels_from_logits_equal_interpolate_then_softmax():
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(21, 13, 17, generator=g) * 3
    shape = (50, 61)
    labels, conf, prob = labels_from_logits(logits, shape, max_bytes=21 * 61 * 4 * 3 * 7)  # 7-row strips
    p = torch.softmax(F.interpolate(logits[None], size=shape, mode="bilinear", align_corners=False)[0], 0)
    assert np.array_equal(labels, p.argmax(0).numpy())
    assert np.allclose(conf, p.max(0).values.numpy(), atol=1e-5)
    assert np.allclose(prob, 1 - p[0].numpy(), atol=1e-5)
    blabels, _, bprob = labels_from_logits(logits, shape, classes=(8, 12))
    merged = p[8] + p[12]
    rest = torch.cat([p[:8], p[9:12], p[13:]]).max(0).values
    assert np.array_equal(blabels, (merged >= rest).numpy())
    assert np.allclose(bprob, merged.numpy(), atol=1e-5)


def test_tiling_blends_to_the_untiled_result(proposer, monkeypatch):
    """With a context-free (per-pixel) network, tiles must join without a seam."""
    weights = torch.randn(21, 3, generator=torch.Generator().manual_seed(2))

    def per_pixel(x):
        return torch.einsum("kc,chw->khw", weights, x[0].float())

    monkeypatch.setattr(proposer, "_forward", per_pixel)
    image = np.random.default_rng(1).random((70, 150, 3)).astype(np.float32)
    whole = proposer.logits(image)
    monkeypatch.setattr(proposer, "tile", 64)
    monkeypatch.setattr(proposer, "overlap", 16)
    seen = []
    tiled = proposer.logits(image, progress=lambda d, t, m: seen.append(t))
    assert max(seen) > 1
    assert torch.allclose(whole, tiled, atol=1e-5)


def test_tiles_cover_and_weights_partition():
    spans = tile_spans(1000, 300, 40)
    assert spans[0][0] == 0 and spans[-1][1] == 1000
    assert all(b[0] <= a[1] - 40 for a, b in itertools.pairwise(spans))
    assert all(e - s <= 300 for s, e in spans)
    cover = np.zeros((90, 130))
    for y0, y1, x0, x1 in tiles((90, 130), 50, 10):
        cover[y0:y1, x0:x1] += blend_weights(y1 - y0, x1 - x0, 10)
    assert cover.min() > 0


def test_cancel(proposer):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        proposer.propose(np.zeros((32, 32), np.uint8), cancel=token)


# ------------------------------------------------------------------------------ seeds for the cut
def test_proposal_scribbles_keep_away_from_the_boundary():
    yy, xx = np.mgrid[0:80, 0:80]
    d = np.hypot(yy - 40, xx - 40)
    prob = np.clip(1.5 - d / 20, 0, 1)  # 1 inside r=10, falls to 0 at r=30
    seeds = proposal_scribbles(prob, 0.9, 0.1, margin=3)
    assert np.all(d[seeds == 1] < 12 - 3 + 1e-6)  # confident (r <= 12) minus the margin
    assert np.all(d[seeds == 2] > 28 + 3 - 1.5)
    assert not np.any(seeds[(d > 12) & (d < 28)])
    assert (seeds == 1).any() and (seeds == 2).any()


def test_proposal_scribbles_thin_object_keeps_its_core():
    prob = np.zeros((30, 30), np.float32)
    prob[10:13, 5:25] = 1.0  # 3 px thick: a margin of 8 would erase it
    seeds = proposal_scribbles(prob, margin=8)
    assert (seeds == 1).any() and np.all(prob[seeds == 1] == 1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"object_threshold": 0.2, "background_threshold": 0.5}, "thresholds"),
    ({"margin": -1}, "margin"),
])
def test_proposal_scribbles_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        proposal_scribbles(np.zeros((4, 4)), **kwargs)
    with pytest.raises(ValueError, match="2-D"):
        proposal_scribbles(np.zeros(4))


def _proposal_from(prob):
    labels = (prob >= 0.5).astype(np.uint8)
    return Proposal(labels, np.maximum(prob, 1 - prob), prob.astype(np.float32), ("background", "disk"), (1,), "test")


def test_refine_proposal_with_the_graph_cut():
    image, truth = disk_image((64, 64), channels=3, dtype=np.uint8)
    from scipy import ndimage as ndi

    # a rough proposal: the truth blurred and shifted by 3 pixels
    prob = ndi.gaussian_filter(np.roll(truth.astype(np.float32), 3, axis=1), 3)
    labels, seeds = refine_proposal(image, _proposal_from(prob), margin=2)
    iou = np.logical_and(labels == 1, truth).sum() / np.logical_or(labels == 1, truth).sum()
    assert iou > 0.9
    assert set(np.unique(seeds)) == {0, 1, 2}
    with pytest.raises(ValueError, match="no confident object"):
        refine_proposal(image, _proposal_from(np.zeros((64, 64))))


# ------------------------------------------------------------------------------ CLI
def test_cli_propose(tmp_path, capsys, mobilenet_file, no_network):
    from PIL import Image

    image, _ = disk_image((40, 50), channels=3, dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "img.png")
    out = tmp_path / "mask.png"
    argv = ["propose", str(tmp_path / "img.png"), "--model", "mobilenet", "--weights", str(mobilenet_file),
            "--device", "cpu", "--input-size", "48", "-o", str(out)]
    assert main(argv) == 0
    mask = np.asarray(Image.open(out))
    assert mask.shape == (40, 50) and mask.max() < 21
    assert "deeplabv3_mobilenet_v3_large" in capsys.readouterr().err
    assert main(argv[:-1] + [str(tmp_path / "pet.tif"), "--classes", "pet", "-q"]) == 0


@pytest.mark.parametrize("extra, message", [
    (["--classes", "kitten"], "unknown class 'kitten'"),
    (["-o", "mask.jpg"], "use a file name ending in"),
    (["--refine"], "need --classes"),
    (["--weights", "missing.pth"], "weights file not found"),
])
def test_cli_propose_errors_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img.png")
    status = main(["propose", "img.png", "--model", "mobilenet", "--device", "cpu", "-o", "out.png"] + extra)
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
