"""Segmentation networks: UNet, ResNet34-UNet, CLIP-seg and an autoencoder-pretrained encoder + head.

Every network takes ``x`` of shape ``(n, 3 + extra, h, w)``: the RGB image in
[0, 1] followed by the optional extra channels (also in [0, 1]), and returns
logits ``(n, out, h, w)`` with ``out = 1`` for a binary model and ``out =
classes`` otherwise. The input normalisation (ImageNet's, or CLIP's) happens
inside the network, in non-persistent buffers, so a checkpoint's tensors are
exactly its trainable weights. ``h`` and ``w`` must be multiples of
:data:`STRIDE` (the predictor pads).

A network is built from its JSON configuration (:func:`build_network`); the
configuration is what a checkpoint stores next to the weights.
"""

from __future__ import annotations

#: every network needs inputs whose sides are a multiple of this
STRIDE = 32
IMAGENET_NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
#: default channel width of the first level, per architecture
DEFAULT_WIDTHS = {"unet": 32, "resnet34-unet": 16, "clip-seg": 16, "autoencoder": 16}
ARCHITECTURES = tuple(DEFAULT_WIDTHS)


def out_channels(classes: int) -> int:
    """Logit channels of a model with ``classes`` classes (one for binary).

    Examples
    --------
    >>> out_channels(2), out_channels(4)
    (1, 4)
    """
    return 1 if int(classes) == 2 else int(classes)


def _nn():
    import torch
    import torch.nn.functional as F
    from torch import nn

    return torch, F, nn


def conv_block(cin: int, cout: int, stride: int = 1):
    """3x3 convolution, batch norm, ReLU."""
    _, _, nn = _nn()
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_block(cin: int, cout: int):
    """Two :func:`conv_block` (UNet's level)."""
    _, _, nn = _nn()
    return nn.Sequential(conv_block(cin, cout), conv_block(cout, cout))


def _classes():
    torch, F, nn = _nn()

    class Normalise(nn.Module):
        """Normalise the first three channels with ``mean``/``std``; extra channels pass unchanged."""

        def __init__(self, mean, std):
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

        def forward(self, x):
            rgb = (x[:, :3] - self.mean) / self.std
            return rgb if x.shape[1] == 3 else torch.cat([rgb, x[:, 3:]], 1)

    class UpDecoder(nn.Module):
        """UNet decoder: from the deepest feature up, ×2 bilinear, concatenate the skip, :func:`double_block`."""

        def __init__(self, widths, out_widths):
            super().__init__()
            # widths: channels of the skips from fine to coarse; the last is the deepest feature
            blocks, cin = [], widths[-1]
            for skip, cout in zip(reversed(widths[:-1]), out_widths):
                blocks.append(double_block(cin + skip, cout))
                cin = cout
            self.blocks = nn.ModuleList(blocks)

        def forward(self, feats):
            x = feats[-1]
            for block, skip in zip(self.blocks, reversed(feats[:-1])):
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = block(torch.cat([x, skip], 1))
            return x

    class UNet(nn.Module):
        """Ronneberger's UNet: 5 levels (strides 1 to 16) of two 3x3 conv-BN-ReLU, bilinear upsampling."""

        def __init__(self, in_ch, out_ch, width=32, depth=4, norm=IMAGENET_NORM):
            super().__init__()
            widths = [width * 2 ** i for i in range(depth + 1)]
            self.norm = Normalise(norm["mean"], norm["std"])
            self.inc = double_block(in_ch, widths[0])
            self.downs = nn.ModuleList(
                nn.Sequential(nn.MaxPool2d(2), double_block(widths[i], widths[i + 1])) for i in range(depth))
            self.decoder = UpDecoder(widths, list(reversed(widths[:-1])))
            self.head = nn.Conv2d(widths[0], out_ch, 1)

        def forward(self, x):
            feats = [self.inc(self.norm(x))]
            for down in self.downs:
                feats.append(down(feats[-1]))
            return self.head(self.decoder(feats))

    class ResNetUNet(nn.Module):
        """torchvision ResNet-34 encoder (strides 2 to 32) under a UNet decoder; a full-resolution skip."""

        def __init__(self, in_ch, out_ch, width=16, norm=IMAGENET_NORM):
            super().__init__()
            import torchvision

            enc = torchvision.models.resnet34(weights=None)
            if in_ch != 3:
                enc.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
            enc.fc = nn.Identity()
            self.norm = Normalise(norm["mean"], norm["std"])
            self.encoder = enc
            self.full = double_block(in_ch, width)
            skips = [width, 64, 64, 128, 256, 512]
            self.decoder = UpDecoder(skips, [256, 128, 64, 2 * width, width])
            self.head = nn.Conv2d(width, out_ch, 1)

        def forward(self, x):
            x = self.norm(x)
            e = self.encoder
            s2 = e.relu(e.bn1(e.conv1(x)))
            s4 = e.layer1(e.maxpool(s2))
            s8 = e.layer2(s4)
            s16 = e.layer3(s8)
            s32 = e.layer4(s16)
            return self.head(self.decoder([self.full(x), s2, s4, s8, s16, s32]))

    class CLIPSeg(nn.Module):
        """CLIP patch tokens (frozen, not part of the state dict) → UNet-style decoder with a conv pyramid.

        The tokens of the RGB channels are projected to ``token_width`` and decoded
        ×2 at a time from stride 8 to 1, each step joined with a skip from a light
        convolutional pyramid on the input (RGB and extra channels), as PointCLIP's decoder.
        """

        def __init__(self, clip, in_ch, out_ch, width=16, token_width=96, norm=None):
            super().__init__()
            from ...features.clip import CLIP_MEAN, CLIP_STD

            self.__dict__["clip"] = clip  # frozen and loaded from its own checkpoint: not a submodule
            hidden = int(clip.config.hidden_size)
            self.patch = int(clip.config.patch_size)
            self.norm = Normalise(CLIP_MEAN, CLIP_STD)
            widths = [width, int(width * 1.5), 2 * width, 3 * width]
            self.down = nn.ModuleList([conv_block(in_ch, widths[0])] + [
                conv_block(widths[i], widths[i + 1], 2) for i in range(3)])
            self.tokens = nn.Sequential(nn.Conv2d(hidden, token_width, 1), nn.ReLU(inplace=True))
            self.decoder = UpDecoder(widths + [token_width], list(reversed(widths)))
            self.head = nn.Conv2d(widths[0], out_ch, 1)

        def forward(self, x):
            from ...features.clip import patch_tokens

            p = self.patch
            h, w = x.shape[-2:]
            rgb = self.norm(x[:, :3])
            size = (max(p, round(h / p) * p), max(p, round(w / p) * p))
            if size != (h, w):
                rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
            with torch.no_grad():
                tok = patch_tokens(self.clip, rgb).float()
            feats = []
            y = x
            for layer in self.down:
                y = layer(y)
                feats.append(y)
            feats.append(self.tokens(tok))
            return self.head(self.decoder(feats))

    class ConvEncoder(nn.Module):
        """Four levels of :func:`double_block` at strides 1, 2, 4, 8 (the autoencoder's encoder)."""

        def __init__(self, in_ch, width, norm=IMAGENET_NORM):
            super().__init__()
            widths = [width, 2 * width, 4 * width, 8 * width]
            self.widths = widths
            self.norm = Normalise(norm["mean"], norm["std"])
            self.levels = nn.ModuleList([double_block(in_ch, widths[0])] + [
                nn.Sequential(nn.MaxPool2d(2), double_block(widths[i], widths[i + 1])) for i in range(3)])

        def forward(self, x):
            feats, y = [], self.norm(x)
            for level in self.levels:
                y = level(y)
                feats.append(y)
            return feats

    class ReconstructionDecoder(nn.Module):
        """Decoder of the autoencoder's pretraining: the deepest feature back to the image, no skips."""

        def __init__(self, widths, out_ch):
            super().__init__()
            layers, cin = [], widths[-1]
            for cout in reversed(widths[:-1]):
                layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), double_block(cin, cout)]
                cin = cout
            layers.append(nn.Conv2d(cin, out_ch, 1))
            self.net = nn.Sequential(*layers)

        def forward(self, deepest):
            return torch.sigmoid(self.net(deepest))

    class FrozenEncoderSeg(nn.Module):
        """A (pretrained, frozen) :class:`ConvEncoder` under a trainable UNet-style segmentation head."""

        def __init__(self, in_ch, out_ch, width=16, norm=IMAGENET_NORM):
            super().__init__()
            self.encoder = ConvEncoder(in_ch, width, norm)
            w = self.encoder.widths
            self.decoder = UpDecoder(w, list(reversed(w[:-1])))
            self.head = nn.Conv2d(w[0], out_ch, 1)
            self.freeze_encoder(True)

        def freeze_encoder(self, frozen: bool = True) -> None:
            for p in self.encoder.parameters():
                p.requires_grad_(not frozen)
            self.frozen = frozen
            self.encoder.train(self.training and not frozen)

        def train(self, mode: bool = True):
            super().train(mode)
            self.encoder.train(mode and not self.frozen)  # frozen batch-norm statistics stay fixed
            return self

        def forward(self, x):
            return self.head(self.decoder(self.encoder(x)))

    return {"unet": UNet, "resnet34-unet": ResNetUNet, "clip-seg": CLIPSeg, "autoencoder": FrozenEncoderSeg,
            "reconstruction": ReconstructionDecoder}


_CLASSES: dict = {}


def network_class(name: str):
    """The ``nn.Module`` class of an architecture (or ``"reconstruction"``)."""
    if not _CLASSES:
        _CLASSES.update(_classes())
    return _CLASSES[name]


def build_network(config: dict, device: str = "cpu", clip=None):
    """The network described by a segmentation ``config``, on ``device``, randomly initialised.

    Parameters
    ----------
    config : dict
        ``model`` (one of :data:`ARCHITECTURES`), ``classes``, ``in_channels``,
        ``width``; for ``clip-seg`` also ``token_width``.
    device : str
    clip : torch.nn.Module, optional
        The CLIP vision model of ``clip-seg`` (loaded by the caller).

    Raises
    ------
    ValueError
        For an unknown architecture.

    Examples
    --------
    >>> import torch
    >>> net = build_network({"model": "unet", "classes": 2, "in_channels": 3, "width": 4})
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 1, 32, 32])
    """
    arch = config.get("model")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown segmentation architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    out = out_channels(config["classes"])
    cls = network_class(arch)
    if arch == "clip-seg":
        if clip is None:
            raise ValueError("clip-seg needs its CLIP vision model")
        net = cls(clip, int(config["in_channels"]), out, int(config["width"]), int(config.get("token_width", 96)))
    else:
        net = cls(int(config["in_channels"]), out, int(config["width"]))
    return net.to(device)


def load_encoder_weights(net, state: dict, source: str) -> None:
    """Load torchvision ResNet-34 ImageNet weights into a ResNet34-UNet's encoder.

    The classifier (``fc.*``) is ignored. With extra input channels the first
    convolution keeps the RGB filters and starts the extra channels at zero.

    Raises
    ------
    ValueError
        When ``state`` is not a ResNet-34 state dict (one line, naming ``source``).
    """
    import torch

    enc = net.encoder
    own = enc.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and k != "conv1.weight" and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong or "conv1.weight" not in state or tuple(state["conv1.weight"].shape[:1]) != (64,):
        raise ValueError(f"{source} is not a ResNet-34 checkpoint: {len(missing)} missing keys, "
                         f"{len(wrong)} of the wrong shape")
    w = state["conv1.weight"]
    if own["conv1.weight"].shape != w.shape:
        full = torch.zeros_like(own["conv1.weight"])
        full[:, :3] = w
        state = {**state, "conv1.weight": full}
    enc.load_state_dict({k: state[k] for k in own})
