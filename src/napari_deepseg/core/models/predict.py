"""Prediction with a trained segmentation checkpoint (``napari-deepseg predict``, the *Train & predict* widget).

A checkpoint folder (``model.safetensors`` + ``config.json``, written by
``napari-deepseg train unet|resnet34-unet|clip-seg|autoencoder``) is loaded
without unpickling anything. :meth:`SegmentationModel.predict` takes an image in
napari order and returns labels of the same size:

* by default the image is resized to the training size (``image_size`` square,
  as every training image was), the logits are resized back bilinearly;
* with ``scale`` (e.g. ``1.0`` for a model trained on crops at native
  resolution) the image is resized by that factor and processed in tiles of at
  most ``tile`` pixels overlapping by ``overlap``, blended without seams, so
  large images need bounded memory.

Labels: 0 background, 1 object (binary), or the class index (multi-class).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .inference import blend_weights, fold_batchnorm, rgb_image, tiles
from ..utils.progress import CancelToken, ProgressCallback, check, report
from .training.checkpoint import load_checkpoint, load_into
from .training.networks import ARCHITECTURES, STRIDE, build_network

#: default tile side and overlap (network input pixels) when ``scale`` is given
TILE = 512
OVERLAP = 64


class SegmentationModel:
    """A trained segmentation network ready to label images.

    Parameters
    ----------
    checkpoint : path-like
        Folder holding ``model.safetensors`` and ``config.json``.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    backbone : str, optional
        For ``clip-seg``: where the CLIP model is now (a moved folder).

    Raises
    ------
    ValueError
        For a missing or corrupt checkpoint, a checkpoint of another kind of model
        (e.g. PointCLIP), or weights that do not fit the configuration.

    Examples
    --------
    >>> import tempfile
    >>> from napari_deepseg.core.models.training.checkpoint import save_checkpoint
    >>> from napari_deepseg.core.models.training.segmentation import segmentation_config
    >>> cfg = segmentation_config("unet", 32, 2, 4, ())
    >>> d = save_checkpoint(tempfile.mkdtemp(), build_network(cfg).state_dict(), cfg)
    >>> SegmentationModel(d, device="cpu").predict(np.zeros((40, 50, 3), np.uint8)).shape
    (40, 50)
    """

    def __init__(self, checkpoint, device: str = "auto", backbone: str | None = None):
        from ..features.resnet import resolve_device
        from .training.distributed import local_device

        folder = Path(checkpoint).expanduser()
        state, config = load_checkpoint(folder)
        arch = config.get("model")
        if config.get("task") != "segmentation" or arch not in ARCHITECTURES:
            raise ValueError(f"{folder} holds a {arch!r} checkpoint, not a segmentation model "
                             f"({', '.join(ARCHITECTURES)})")
        self.folder = folder
        self.config = config
        self.device = local_device(resolve_device(device))
        clip = None
        if arch == "clip-seg":
            from ..features.clip import load_clip_vision

            clip = load_clip_vision(backbone or config["backbone"], self.device)
        try:
            self.net = build_network(config, self.device, clip=clip)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{folder / 'config.json'} is incomplete or invalid: {type(exc).__name__}: {exc}") from None
        load_into(self.net, state, f"{folder / 'model.safetensors'}")
        self.net.eval()
        fold_batchnorm(self.net)  # inference only: one pass less over every activation map

    @property
    def classes(self) -> int:
        """Number of classes (2 = binary)."""
        return int(self.config["classes"])

    @property
    def image_size(self) -> int:
        """Square training size."""
        return int(self.config["image_size"])

    def _input(self, rgb: np.ndarray, size: tuple):
        """``(1, 3 + e, h, w)`` tensor: RGB in [0, 1] resized to ``size`` and the extra channels."""
        import torch
        import torch.nn.functional as F

        from .training.channels import compute_channels

        x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        if tuple(size) != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        names = self.config.get("extra_channels", [])
        if names:
            pic = np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            extra = torch.from_numpy(compute_channels(pic, names, device=self.device))[None]
            x = torch.cat([x, extra], 1)
        return x

    def _logits(self, x):
        """Logits of an input of any size (reflect-padded to a multiple of :data:`STRIDE`)."""
        import torch
        import torch.nn.functional as F

        h, w = x.shape[-2:]
        ph, pw = -h % STRIDE, -w % STRIDE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        with torch.inference_mode():
            out = self.net(x.to(self.device)).float().cpu()
        return out[..., :h, :w]

    def probabilities(self, image, scale: float | None = None, tile: int = TILE, overlap: int = OVERLAP,
                      progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> np.ndarray:
        """Class probabilities ``(k, rows, cols)`` float32 (``k = 2`` for binary: background, object).

        Parameters
        ----------
        image : array-like
            ``(rows, cols)`` or ``(rows, cols, 3|4)``, any numeric dtype.
        scale : float, optional
            ``None``: the training geometry (resize to ``image_size`` square). A
            factor: resize by it and process in tiles.
        tile, overlap : int
            Tile side and overlap in network-input pixels (``scale`` only).
        """
        import torch
        import torch.nn.functional as F

        rgb = rgb_image(image)
        rows, cols = rgb.shape[:2]
        if scale is None:
            size = (self.image_size, self.image_size)
        else:
            if not float(scale) > 0:
                raise ValueError(f"scale must be > 0, got {scale}")
            size = (max(1, round(rows * float(scale))), max(1, round(cols * float(scale))))
        if int(tile) < STRIDE or int(overlap) < 0 or int(overlap) >= int(tile):
            raise ValueError(f"tile must be >= {STRIDE} and 0 <= overlap < tile, got tile {tile}, overlap {overlap}")
        x = self._input(rgb, size)
        boxes = list(tiles(size, int(tile), int(overlap))) if scale is not None else [(0, size[0], 0, size[1])]
        acc = None
        weight = np.zeros(size, np.float32)
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            check(cancel)
            report(progress, i, len(boxes), "predicting")
            logits = self._logits(x[..., y0:y1, x0:x1])
            prob = torch.sigmoid(logits) if logits.shape[1] == 1 else logits.softmax(1)
            prob = prob[0].numpy()
            if acc is None:
                acc = np.zeros((prob.shape[0],) + tuple(size), np.float32)
            wts = blend_weights(y1 - y0, x1 - x0, overlap // 2) if len(boxes) > 1 else np.ones((y1 - y0, x1 - x0),
                                                                                                   np.float32)
            acc[:, y0:y1, x0:x1] += prob * wts
            weight[y0:y1, x0:x1] += wts
        report(progress, len(boxes), len(boxes), "predicting")
        prob = torch.from_numpy(acc / weight)[None]
        if tuple(size) != (rows, cols):
            prob = F.interpolate(prob, size=(rows, cols), mode="bilinear", align_corners=False)
        prob = prob[0].numpy()
        if prob.shape[0] == 1:
            prob = np.concatenate([1 - prob, prob])
        return prob.astype(np.float32)

    def predict(self, image, scale: float | None = None, tile: int = TILE, overlap: int = OVERLAP,
                progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> np.ndarray:
        """Labels ``(rows, cols)`` uint8 of a 2-D image (see :meth:`probabilities` for the options)."""
        prob = self.probabilities(image, scale, tile, overlap, progress, cancel)
        if prob.shape[0] == 2:
            return (prob[1] > 0.5).astype(np.uint8)
        return prob.argmax(0).astype(np.uint8)

    def predict_stack(self, image, rgb: bool | None = None, **options) -> np.ndarray:
        """Labels of a 2-D image or of every plane of a stack (leading axes; ``rgb`` = last axis is colour)."""
        arr = np.asarray(image)
        if rgb is None:
            rgb = arr.ndim >= 3 and arr.shape[-1] in (3, 4)
        spatial = arr.ndim - (1 if rgb else 0)
        if spatial < 2:
            raise ValueError(f"image must be at least 2-D, got shape {arr.shape}")
        if spatial == 2:
            return self.predict(arr, **options)
        lead = arr.shape[: spatial - 2]
        out = np.zeros(lead + arr.shape[spatial - 2 : spatial], np.uint8)
        for index in np.ndindex(*lead):
            out[index] = self.predict(arr[index], **options)
        return out
