r"""PointCLIP: click-to-segment with CLIP features and a small trained decoder.

The original work's model: the image and a Gaussian heatmap of the clicks both
go through the (frozen) CLIP vision encoder; their patch tokens are concatenated
(1536 channels for ViT-B) and a UNet-style decoder upsamples them to a mask.
Here the decoder's skip connections come from a light convolutional pyramid on
the image and the heatmaps themselves, so the mask follows image edges and the
clicks' exact positions at full resolution.

Everything runs at the checkpoint's square input size (``image_size``, 224 by
default, as CLIP was trained); the logits are resized to the image.

Shapes: image ``(rows, cols, 3)`` in napari order; tensors ``(n, c, h, w)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import Click, ClickMethod, check_clicks, register_click_method
from ..utils.progress import CancelToken, ProgressCallback, check, report
from ..utils.validation import as_float_image

#: Gaussian σ of a click in the heatmap, in pixels of the model input (224 px by default)
HEATMAP_SIGMA = 5.0
#: channels of the skip pyramid at strides 1, 2, 4, 8
SKIP_WIDTHS = (16, 24, 32, 48)
#: channels the concatenated CLIP tokens are projected to
TOKEN_WIDTH = 96
MODEL_NAME = "pointclip"


def click_heatmaps(clicks: Sequence[Click], shape, size: int, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """Positive and negative click heatmaps at the model's ``size x size`` input.

    Each click of an image of ``shape = (rows, cols)`` is moved to the input grid
    and drawn as a Gaussian of σ ``sigma`` (peak 1); overlapping clicks take the
    maximum.

    Returns
    -------
    numpy.ndarray
        float32 ``(2, size, size)``: channel 0 positive, channel 1 negative.

    Examples
    --------
    >>> h = click_heatmaps([Click(4, 4, True)], (9, 9), 9, sigma=1.0)
    >>> h.shape, float(h[0, 4, 4]), float(h[1].max())
    ((2, 9, 9), 1.0, 0.0)
    """
    rows, cols = shape[:2]
    out = np.zeros((2, size, size), np.float32)
    yy = np.arange(size, dtype=np.float32)[:, None]
    xx = np.arange(size, dtype=np.float32)[None, :]
    inv = np.float32(-0.5 / (sigma * sigma))
    for c in clicks:
        r = (c.row + 0.5) * size / rows - 0.5
        q = (c.col + 0.5) * size / cols - 0.5
        g = np.exp(((yy - r) ** 2 + (xx - q) ** 2) * inv)
        ch = out[0 if c.positive else 1]
        np.maximum(ch, g, out=ch)
    return out


def build_decoder(hidden: int, skip_widths=SKIP_WIDTHS, token_width: int = TOKEN_WIDTH):
    """The trainable part of PointCLIP for CLIP tokens of ``hidden`` channels (see :class:`_Decoder`)."""
    return _decoder_class()(int(hidden), tuple(int(w) for w in skip_widths), int(token_width))


def _decoder_class():
    import torch
    import torch.nn.functional as F
    from torch import nn

    def block(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class _Decoder(nn.Module):
        """Tokens of image and heatmap, concatenated, decoded UNet-style to 2-class logits.

        ``forward(image, heat, img_tokens, heat_tokens)``: image ``(n, 3, s, s)`` in
        [0, 1], heat ``(n, 2, s, s)``, tokens ``(n, hidden, g, g)``; returns
        logits ``(n, 2, s, s)`` (background, object). ``s`` must be a multiple of 8.
        """

        def __init__(self, hidden, skip_widths, token_width):
            super().__init__()
            w1, w2, w4, w8 = skip_widths
            self.down = nn.ModuleList([block(5, w1), block(w1, w2, 2), block(w2, w4, 2), block(w4, w8, 2)])
            self.tokens = nn.Sequential(nn.Conv2d(2 * hidden, token_width, 1), nn.ReLU(inplace=True))
            self.up8 = block(token_width + w8, w8)
            self.up4 = block(w8 + w4, w4)
            self.up2 = block(w4 + w2, w2)
            self.up1 = block(w2 + w1, w1)
            self.head = nn.Conv2d(w1, 2, 1)

        def forward(self, image, heat, img_tokens, heat_tokens):
            x = torch.cat([image, heat], 1)
            skips = []
            for layer in self.down:
                x = layer(x)
                skips.append(x)
            t = self.tokens(torch.cat([img_tokens, heat_tokens], 1))
            x = F.interpolate(t, size=skips[3].shape[-2:], mode="bilinear", align_corners=False)
            x = self.up8(torch.cat([x, skips[3]], 1))
            for layer, skip in ((self.up4, skips[2]), (self.up2, skips[1]), (self.up1, skips[0])):
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = layer(torch.cat([x, skip], 1))
            return self.head(x)

    return _Decoder


def heat_image(heat):
    """The heatmaps as a 3-channel picture for CLIP: (positive, negative, 0), normalised."""
    import torch

    from ..features.clip import normalize_clip

    pic = torch.cat([heat, torch.zeros_like(heat[:, :1])], 1)
    return normalize_clip(pic)


def default_config(backbone: str, hidden: int, patch: int, image_size: int = 224) -> dict:
    """The JSON configuration of a PointCLIP checkpoint.

    Examples
    --------
    >>> default_config("tiny", 32, 8, 64)["image_size"]
    64
    """
    if image_size % patch or image_size % 8:
        raise ValueError(f"image_size must be a multiple of the patch size {patch} and of 8, got {image_size}")
    return {
        "model": MODEL_NAME,
        "backbone": str(backbone),
        "hidden_size": int(hidden),
        "patch_size": int(patch),
        "image_size": int(image_size),
        "heatmap_sigma": HEATMAP_SIGMA * image_size / 224.0,
        "skip_widths": list(SKIP_WIDTHS),
        "token_width": TOKEN_WIDTH,
    }


class PointCLIPModel:
    """CLIP encoder (frozen) + trained decoder, with the conversions around them.

    Parameters
    ----------
    config : dict
        See :func:`default_config`.
    device : str
        Resolved torch device.
    backbone : str, optional
        Override of the CLIP checkpoint named in ``config`` (a moved folder).
    """

    def __init__(self, config: dict, device: str = "cpu", backbone: str | None = None):
        from ..features.clip import load_clip_vision

        self.config = dict(config)
        self.device = device
        self.size = int(config["image_size"])
        self.sigma = float(config["heatmap_sigma"])
        self.clip = load_clip_vision(backbone or config["backbone"], device)
        got = (int(self.clip.config.hidden_size), int(self.clip.config.patch_size))
        want = (int(config["hidden_size"]), int(config["patch_size"]))
        if got != want:
            raise ValueError(
                f"the CLIP backbone '{backbone or config['backbone']}' has hidden size {got[0]} and patch {got[1]}, "
                f"but the checkpoint was trained with {want[0]} and {want[1]}"
            )
        self.decoder = build_decoder(config["hidden_size"], config["skip_widths"], config["token_width"]).to(device)

    def encode(self, batch):
        """CLIP patch tokens of a normalised ``(n, 3, s, s)`` batch (no gradient)."""
        import torch

        from ..features.clip import patch_tokens

        with torch.no_grad():
            return patch_tokens(self.clip, batch.to(self.device))

    def image_tensor(self, image: np.ndarray):
        """A float image ``(rows, cols, c)`` in [0, 1] resized to the ``(1, 3, s, s)`` input."""
        import torch
        import torch.nn.functional as F

        rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
        x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)

    def logits(self, image, heat, img_tokens):
        """Decoder logits ``(n, 2, s, s)`` for images, heatmaps and cached image tokens."""
        heat_tokens = self.encode(heat_image(heat))
        return self.decoder(image.to(self.device), heat.to(self.device), img_tokens, heat_tokens)


def load_pointclip(checkpoint, device: str = "auto", backbone: str | None = None) -> PointCLIPModel:
    """A trained PointCLIP from a checkpoint folder (safetensors + JSON, nothing unpickled).

    Raises
    ------
    ValueError
        If the folder holds no PointCLIP checkpoint, a corrupt file, or weights of
        another architecture (one line naming the folder).
    """
    from ..features.resnet import resolve_device
    from ..models.training.checkpoint import load_checkpoint, load_into

    state, config = load_checkpoint(checkpoint)
    if config.get("model") != MODEL_NAME:
        raise ValueError(f"checkpoint {checkpoint} is a '{config.get('model')}' model, not {MODEL_NAME}")
    missing = [k for k in ("backbone", "hidden_size", "patch_size", "image_size", "heatmap_sigma",
                           "skip_widths", "token_width") if k not in config]
    if missing:
        raise ValueError(f"checkpoint {checkpoint}: config.json lacks {', '.join(missing)}")
    model = PointCLIPModel(config, resolve_device(device), backbone)
    load_into(model.decoder, state, f"checkpoint {checkpoint}")
    model.decoder.eval()
    return model


@register_click_method("pointclip")
class PointCLIPPredictor(ClickMethod):
    """Click method ``pointclip``: a trained PointCLIP checkpoint answers the clicks.

    Parameters
    ----------
    checkpoint : path-like
        Folder written by ``napari-deepseg train pointclip`` (``model.safetensors``
        + ``config.json``).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    backbone : str, optional
        CLIP checkpoint id or folder replacing the one recorded in the checkpoint.

    Examples
    --------
    >>> PointCLIPPredictor(checkpoint=None)
    Traceback (most recent call last):
    ...
    ValueError: pointclip needs a trained checkpoint folder (napari-deepseg train pointclip DATASET -o DIR); without one use points-graphcut
    """

    def __init__(self, checkpoint=None, device: str = "auto", backbone: str | None = None):
        if checkpoint is None or str(checkpoint) in ("", "."):
            raise ValueError("pointclip needs a trained checkpoint folder (napari-deepseg train pointclip DATASET "
                             "-o DIR); without one use points-graphcut")
        self.checkpoint = Path(checkpoint)
        self.device = device
        self.backbone = backbone
        self._model: PointCLIPModel | None = None
        self._cache = None  # (image key, shape, image tensor, image tokens)

    @property
    def model(self) -> PointCLIPModel:
        """The loaded model (read on first use)."""
        if self._model is None:
            self._model = load_pointclip(self.checkpoint, self.device, self.backbone)
        return self._model

    def set_image(self, image, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> None:
        import hashlib

        from ..features.clip import normalize_clip

        arr = np.asarray(image)
        h = hashlib.blake2b(str((arr.shape, arr.dtype.str)).encode(), digest_size=16)
        h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
        if self._cache is not None and self._cache[0] == h.hexdigest():
            return  # the same image: its tokens are cached
        report(progress, 0, 1, "pointclip: image features")
        norm = as_float_image(arr)
        model = self.model
        check(cancel)
        x = model.image_tensor(norm)
        tokens = model.encode(normalize_clip(x))
        self._cache = (h.hexdigest(), norm.shape[:2], x.to(model.device), tokens)
        report(progress, 1, 1, "pointclip: image features")

    def predict_logits(self, clicks: Sequence[Click]):
        """Object-minus-background logit ``(rows, cols)`` float32 for the clicks."""
        import torch
        import torch.nn.functional as F

        if self._cache is None:
            raise RuntimeError("no image set: call set_image(image) before predict()")
        _, shape, x, tokens = self._cache
        clicks = check_clicks(clicks, shape)
        m = self.model
        heat = torch.from_numpy(click_heatmaps(clicks, shape, m.size, m.sigma))[None].to(m.device)
        with torch.inference_mode():
            logits = m.logits(x, heat, tokens)
            diff = logits[:, 1:2] - logits[:, 0:1]
            full = F.interpolate(diff, size=tuple(shape), mode="bilinear", align_corners=False)
        return full[0, 0].float().cpu().numpy()

    def predict(self, clicks: Sequence[Click], cancel: CancelToken | None = None) -> np.ndarray:
        check(cancel)
        return self.predict_logits(clicks) > 0
