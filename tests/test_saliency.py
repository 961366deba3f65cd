"""Saliency maps: the three modes against their definitions, tiling, VGG16 via the real loader, the command.

The definitions are checked on tiny networks whose gradients are worked out by
hand; VGG16 itself is built with *random* weights saved to a temporary folder
and loaded through the plugin's loader (never downloaded).
"""

from __future__ import annotations

import numpy as np
import pytest
from _synthetic import disk_image, disk_scribbles

from napari_deepseg.cli import main
from napari_deepseg.core import (
    SegmentationSession,
    WeightsUnavailableError,
    get_extractor,
)
from napari_deepseg.core.utils.progress import Cancelled, CancelToken
from napari_deepseg.core.models.saliency import (
    MODES,
    SaliencyModel,
    gradient_map,
    input_gradient,
    normalise_map,
    saliency_relu,
    set_relu_mode,
)
from napari_deepseg.core.io.weights import weights_file_name

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


# ------------------------------------------------------------------------------ definitions
@pytest.mark.parametrize("mode", MODES)
def test_relu_backward_definitions(mode):
    x = torch.tensor([-2.0, -1.0, 1.0, 2.0], requires_grad=True)
    g = torch.tensor([3.0, -3.0, 4.0, -4.0])
    y = saliency_relu(mode)(x)
    assert torch.equal(y, x.clamp(min=0))  # the forward pass is a plain ReLU
    y.backward(g)
    expected = {
        "backprop": [0.0, 0.0, 4.0, -4.0],  # g where x > 0
        "deconv": [3.0, 0.0, 4.0, 0.0],  # max(g, 0), whatever x
        "guided": [0.0, 0.0, 4.0, 0.0],  # max(g, 0) where x > 0
    }[mode]
    assert x.grad.tolist() == expected


def two_layer_net():
    """x (2) -> Linear W1 -> ReLU -> Linear W2 -> 2 scores, with hand-picked weights."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 3, bias=False), torch.nn.ReLU(), torch.nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net[2].weight.copy_(torch.tensor([[2.0, -1.0, 3.0], [1.0, 1.0, 1.0]]))
    return net


@pytest.mark.parametrize("mode, expected", [
    # x = (1, -2): hidden pre-activations (1, -2, -1) -> only unit 0 is active; score 0 = 2*h0 - h1 + 3*h2
    ("backprop", [2.0, 0.0]),  # W1^T (W2[0] * [h > 0]) = W1^T (2, 0, 0)
    ("deconv", [5.0, 3.0]),  # W1^T max(W2[0], 0) = W1^T (2, 0, 3)
    ("guided", [2.0, 0.0]),  # W1^T (max(W2[0], 0) * [h > 0]) = W1^T (2, 0, 0)
])
def test_gradients_by_hand(mode, expected):
    net = two_layer_net()
    set_relu_mode(net, mode)
    grad, k, score = input_gradient(net, torch.tensor([[1.0, -2.0]]), class_index=0)
    assert k == 0 and score == pytest.approx(2.0)
    assert grad.tolist() == expected


def test_guided_differs_from_backprop_when_gradients_are_negative():
    # x = (1, 1): all hidden units active; score 0's gradient through unit 1 is negative (-1)
    net = two_layer_net()
    x = torch.tensor([[1.0, 1.0]])
    set_relu_mode(net, "backprop")
    plain = input_gradient(net, x, 0)[0].tolist()
    set_relu_mode(net, "guided")
    guided = input_gradient(net, x, 0)[0].tolist()
    assert plain == [5.0, 2.0]  # W1^T (2, -1, 3)
    assert guided == [5.0, 3.0]  # W1^T (2, 0, 3)


def tiny_cnn(n_classes=5):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(inplace=True),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, n_classes),
    )


def test_backprop_is_the_plain_input_gradient():
    net = tiny_cnn()
    x = torch.randn(1, 3, 32, 32)
    xr = x.clone().requires_grad_(True)
    net(xr)[0, 3].backward()
    model = SaliencyModel(network=tiny_cnn())
    set_relu_mode(model._net, "backprop")
    grad, _, _ = input_gradient(model._net, x, 3)
    assert torch.allclose(grad, xr.grad[0], atol=1e-6)


def test_guided_passes_only_positive_gradients_through_positive_activations():
    """At every ReLU, the guided gradient is zero where the input or the upstream gradient is not positive."""
    net = tiny_cnn()
    set_relu_mode(net, "guided")
    seen = []
    for m in net.modules():
        if type(m).__name__ == "SaliencyReLU":
            m.register_full_backward_hook(lambda mod, gin, gout: seen.append((gin[0], gout[0])))
    x = torch.randn(1, 3, 32, 32)
    acts = []
    hooks = [m.register_forward_hook(lambda mod, i, o: acts.append(i[0].detach()))
             for m in net.modules() if type(m).__name__ == "SaliencyReLU"]
    input_gradient(net, x, 1)
    for h in hooks:
        h.remove()
    assert len(seen) == 3
    for (gin, gout), act in zip(seen, reversed(acts)):
        expected = gout.clamp(min=0) * (act > 0)
        assert torch.allclose(gin, expected)
        assert (gin >= 0).all()


def test_set_relu_mode_switches_and_counts():
    net = tiny_cnn()
    assert set_relu_mode(net, "deconv") == 3
    assert set_relu_mode(net, "guided") == 3
    assert {m.mode for m in net.modules() if hasattr(m, "mode")} == {"guided"}
    with pytest.raises(ValueError, match="saliency mode must be one of backprop, deconv, guided"):
        set_relu_mode(net, "smoothgrad")


def test_gradient_map_and_normalise():
    g = torch.tensor([[[1.0, -3.0]], [[-2.0, 0.5]], [[0.0, 0.0]]])
    assert gradient_map(g).tolist() == [[2.0, 3.0]]
    assert normalise_map(np.zeros((2, 2))).tolist() == [[0, 0], [0, 0]]
    m = normalise_map(np.arange(1000, dtype=np.float32))
    assert m.max() == 1.0 and m.min() == 0.0


# ------------------------------------------------------------------------------ model and tiling
def test_compute_top_class_and_chosen_class():
    model = SaliencyModel(network=tiny_cnn())
    image, _ = disk_image((40, 48), channels=3, dtype=np.uint8)
    top = model.compute(image, mode="guided")
    assert top.map.shape == (40, 48) and top.map.dtype == np.float32
    assert 0 <= top.map.min() and top.map.max() <= 1.0 and top.tiles == 1
    with torch.inference_mode():
        from napari_deepseg.core.models.inference import rgb_image, to_tensor

        expected = int(model._net(to_tensor(rgb_image(image)))[0].argmax())
    assert top.class_index == expected
    chosen = model.compute(image[..., 0], mode="backprop", class_index=2)
    assert chosen.class_index == 2 and chosen.mode == "backprop"


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "grad"}, "saliency mode"),
    ({"class_index": 5}, r"class_index must be in 0\.\.4"),
    ({"class_index": -1}, "class_index"),
    ({"class_index": "x"}, "integer"),
])
def test_compute_bad_input(kwargs, message):
    model = SaliencyModel(network=tiny_cnn())
    with pytest.raises(ValueError, match=message):
        model.compute(np.zeros((32, 32, 3), np.uint8), **kwargs)


def test_too_small_image_and_bad_tiles():
    with pytest.raises(ValueError, match="at least 32 x 32"):
        SaliencyModel(network=tiny_cnn()).compute(np.zeros((20, 40), np.uint8))
    with pytest.raises(ValueError, match="tile"):
        SaliencyModel(tile=16)


class PixelSum(torch.nn.Module):
    """A context-free classifier: 1x1 convolutions and a sum over pixels (exact under tiling)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 1), torch.nn.ReLU(), torch.nn.Conv2d(6, 4, 1))
        self.head = torch.nn.Linear(4, 4)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(4))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.body(x).sum(dim=(2, 3)))


@pytest.mark.parametrize("mode", MODES)
def test_tiled_equals_untiled_for_a_context_free_network(mode):
    image = np.random.default_rng(0).random((80, 150, 3)).astype(np.float32)
    whole = SaliencyModel(network=PixelSum(), tile=512).compute(image, mode, class_index=1, normalise=False)
    seen = []
    tiled = SaliencyModel(network=PixelSum(), tile=48, overlap=12).compute(
        image, mode, class_index=1, normalise=False, progress=lambda d, t, m: seen.append(t))
    assert tiled.tiles > 4 and max(seen) == tiled.tiles
    assert np.allclose(whole.map, tiled.map, atol=1e-5)


def test_tiled_top_class_is_chosen_once_on_the_whole_image():
    model = SaliencyModel(network=tiny_cnn(), tile=40, overlap=8)
    image = np.random.default_rng(1).random((64, 96, 3)).astype(np.float32)
    result = model.compute(image)
    assert result.tiles > 1 and result.class_index == model.top_class(image)


def test_cancel():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        SaliencyModel(network=tiny_cnn()).compute(np.zeros((32, 32), np.uint8), cancel=token)


# ------------------------------------------------------------------------------ VGG16 through the loader
@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A randomly initialised VGG16 under torchvision's file name (about 530 MB, written once)."""
    folder = tmp_path_factory.mktemp("vgg")
    path = folder / weights_file_name(SaliencyModel.weights_url())
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg16(weights=None).state_dict(), path)
    return path


def test_vgg16_loads_through_the_real_loader(vgg_file, no_network, monkeypatch, tmp_path):
    monkeypatch.setenv("NAPARI_DEEPSEG_WEIGHTS_DIR", str(vgg_file.parent))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = SaliencyModel(device="cpu")
    result = model.compute(np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8), "guided",
                           class_index=281)
    assert result.map.shape == (32, 40) and result.class_index == 281
    assert result.class_name == "tabby"  # ImageNet's name from torchvision's metadata
    assert not no_network


def test_vgg16_bad_weights(tmp_path, monkeypatch):
    bad = tmp_path / "bad.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), bad)
    with pytest.raises(ValueError, match="do not fit torchvision's vgg16"):
        SaliencyModel(weights=bad, device="cpu").load_model()
    monkeypatch.delenv("NAPARI_DEEPSEG_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="vgg16-397923af.pth"):
        SaliencyModel(device="cpu", allow_download=False).load_model()


def test_cli_saliency(tmp_path, capsys, vgg_file, no_network):
    import tifffile
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    out = tmp_path / "map.tif"
    argv = ["saliency", str(tmp_path / "i.png"), "--mode", "deconv", "--class-index", "3", "--weights",
            str(vgg_file), "--device", "cpu", "-o", str(out)]
    assert main(argv) == 0
    sal = tifffile.imread(out)
    assert sal.shape == (36, 44) and sal.dtype == np.float32 and sal.max() <= 1.0
    assert "deconv saliency of class 3" in capsys.readouterr().err
    assert main(argv[:-1] + [str(tmp_path / "map.png"), "-q"]) == 0
    assert np.asarray(Image.open(tmp_path / "map.png")).dtype == np.uint8


@pytest.mark.parametrize("extra, message", [
    (["--class-index", "1000"], "class_index must be in 0..999"),
    (["-o", "map.jpg"], "use a file name ending in"),
    (["--weights", "nope.pth"], "weights file not found"),
])
def test_cli_saliency_errors_are_one_line(tmp_path, capsys, monkeypatch, vgg_file, extra, message):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "i.png")
    argv = ["saliency", "i.png", "--weights", str(vgg_file), "--device", "cpu", "-o", "map.tif"] + extra
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_saliency_bad_mode_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["saliency", "i.png", "--mode", "smooth", "-o", "m.tif"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ------------------------------------------------------------------------------ as a feature channel
def test_saliency_backbone_adds_one_channel_and_segments():
    image, truth = disk_image((48, 48), channels=3, dtype=np.uint8)
    extractor = get_extractor("saliency", base="rgb", network=tiny_cnn(), mode="guided")
    fm = extractor.extract(image.astype(np.float32) / 255)
    assert fm.stride == 1 and fm.data.shape == (48, 48, 4)
    session = SegmentationSession(extractor)
    session.set_image(image)
    labels = session.segment(disk_scribbles(truth), preset="seed")
    iou = np.logical_and(labels == 1, truth).sum() / np.logical_or(labels == 1, truth).sum()
    assert iou > 0.8
    with pytest.raises(ValueError, match="base must be one of"):
        get_extractor("saliency", base="resnet50")
    with pytest.raises(ValueError, match="weight"):
        get_extractor("saliency", weight=-1)


def test_bfloat16_precision_is_close():
    image = np.random.default_rng(2).random((40, 40, 3)).astype(np.float32)
    ref = SaliencyModel(network=tiny_cnn()).compute(image, "guided", class_index=1)
    fast = SaliencyModel(network=tiny_cnn(), precision="bfloat16").compute(image, "guided", class_index=1)
    assert np.abs(ref.map - fast.map).mean() < 0.05
    with pytest.raises(ValueError, match="precision"):
        SaliencyModel(precision="float16")


def test_cli_segment_with_the_saliency_backbone_takes_weights(tmp_path, capsys, vgg_file, no_network):
    from PIL import Image

    image, truth = disk_image((40, 48), channels=3, dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "i.png")
    Image.fromarray(disk_scribbles(truth).astype(np.uint8)).save(tmp_path / "s.png")
    out = tmp_path / "m.png"
    argv = ["segment", str(tmp_path / "i.png"), "--scribbles", str(tmp_path / "s.png"), "--features", "saliency",
            "--weights", str(vgg_file), "--device", "cpu", "-o", str(out), "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    labels = np.asarray(Image.open(out))
    assert np.logical_and(labels == 1, truth).sum() / np.logical_or(labels == 1, truth).sum() > 0.8
