"""Automatic semantic proposals from torchvision's DeepLabV3 (COCO, VOC labels).

A proposal is a first mask made before any stroke is painted: a multi-class
labelling with the 21 Pascal VOC classes, or a binary mask of chosen classes
(``"pet"`` = cat + dog). Its confidence turns into scribbles for the graph cut
(:func:`proposal_scribbles`), so the cut and then the user refine it.

Inference is lean: the auxiliary head is dropped, batch-norm folded into the
convolutions, tensors kept ``channels_last`` and run under
``torch.inference_mode``. The image is resized so its shorter side is the
model's input size (520 px, as torchvision's transforms for these weights do);
when the resized image is longer than ``tile`` pixels it is processed in
overlapping tiles blended without seams. The logits are upsampled back to the
image in row strips, so a large image never holds 21 full-resolution maps.

Examples
--------
>>> parse_classes("pet"), parse_classes("cat, 12"), class_name(8)
((8, 12), (8, 12), 'cat')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inference import (
    blend_weights,
    check_state_dict,
    fold_batchnorm,
    rgb_image,
    tiles,
    to_tensor,
)
from ..utils.progress import CancelToken, ProgressCallback, check, report
from ..io.weights import resolve_torchvision_weights

#: the 21 labels of the COCO-with-VOC-labels checkpoints, label value = index
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
#: names that stand for several classes in ``--classes``
CLASS_GROUPS = {
    "pet": ("cat", "dog"),
    "animal": ("bird", "cat", "cow", "dog", "horse", "sheep"),
    "vehicle": ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train"),
    "furniture": ("chair", "diningtable", "sofa"),
}

#: model name -> (torchvision builder, weights enum); all COCO_WITH_VOC_LABELS_V1
MODELS = {
    "deeplabv3_resnet101": ("deeplabv3_resnet101", "DeepLabV3_ResNet101_Weights"),
    "deeplabv3_resnet50": ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights"),
    "deeplabv3_mobilenet_v3_large": ("deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights"),
}
#: short names accepted for the models
MODEL_ALIASES = {"resnet101": "deeplabv3_resnet101", "resnet50": "deeplabv3_resnet50",
                 "mobilenet_v3_large": "deeplabv3_mobilenet_v3_large", "mobilenet": "deeplabv3_mobilenet_v3_large"}
DEFAULT_MODEL = "deeplabv3_resnet101"
#: shorter side of the model's input (torchvision's ``resize_size`` for these weights)
INPUT_SIZE = 520
PRECISIONS = ("float32", "bfloat16")


def model_name(name: str) -> str:
    """The canonical model name for ``name`` (short aliases accepted).

    Examples
    --------
    >>> model_name("mobilenet")
    'deeplabv3_mobilenet_v3_large'
    """
    key = str(name).strip().lower()
    key = MODEL_ALIASES.get(key, key)
    if key not in MODELS:
        allowed = ", ".join(list(MODELS) + list(MODEL_ALIASES))
        raise ValueError(f"unknown proposal model {name!r}; choose one of {allowed}")
    return key


def class_name(index: int) -> str:
    """The VOC name of label ``index``."""
    return VOC_CLASSES[int(index)]


def parse_classes(spec) -> tuple:
    """Object classes as sorted VOC indices from names, groups or numbers.

    Parameters
    ----------
    spec : str or iterable
        ``"cat,dog"``, ``"pet"`` (a :data:`CLASS_GROUPS` name), ``"8,12"``, or a
        sequence of such items. ``None`` or an empty string gives ``()``
        (multi-class mode).

    Raises
    ------
    ValueError
        For an unknown name, a number outside 1..20, or ``background``.
    """
    if spec is None:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = set()
    for item in items:
        text = str(item).strip().lower()
        if not text:
            continue
        names = CLASS_GROUPS.get(text, (text,))
        for name in names:
            if name.isdigit():
                index = int(name)
            elif name in VOC_CLASSES:
                index = VOC_CLASSES.index(name)
            else:
                index = -1
            if not 1 <= index < len(VOC_CLASSES):
                raise ValueError(
                    f"unknown class {item!r}: use VOC names ({', '.join(VOC_CLASSES[1:])}), "
                    f"groups ({', '.join(CLASS_GROUPS)}) or numbers 1-{len(VOC_CLASSES) - 1}"
                )
            out.add(index)
    return tuple(sorted(out))


def model_input_shape(shape, input_size: int | None) -> tuple:
    """``(h, w)`` the model sees: the shorter side scaled to ``input_size`` (``None``/0: unchanged).

    Examples
    --------
    >>> model_input_shape((375, 500), 520), model_input_shape((375, 500), None)
    ((520, 693), (375, 500))
    """
    rows, cols = int(shape[0]), int(shape[1])
    if not input_size:
        return rows, cols
    s = float(input_size) / min(rows, cols)
    return max(1, round(rows * s)), max(1, round(cols * s))


@dataclass(frozen=True)
class Proposal:
    """A proposal for one image.

    Attributes
    ----------
    labels : numpy.ndarray
        uint8 ``(rows, cols)``. Multi-class: the VOC label (0 background,
        8 cat, ...). Binary: 1 where the chosen classes together win, else 0.
    confidence : numpy.ndarray
        float32 ``(rows, cols)``: probability of the label given (for binary
        labels, of the label 0 or 1).
    object_probability : numpy.ndarray
        float32 ``(rows, cols)``: probability of the object, i.e. of the chosen
        classes together, or of "not background" in multi-class mode. Used by
        :func:`proposal_scribbles`.
    class_names : tuple of str
        Name of each label value (``class_names[k]`` for label ``k``).
    classes : tuple of int
        The chosen VOC classes (empty in multi-class mode).
    model : str
        The model's name.
    """

    labels: np.ndarray
    confidence: np.ndarray
    object_probability: np.ndarray
    class_names: tuple
    classes: tuple
    model: str

    @property
    def binary(self) -> bool:
        """Whether this is a binary proposal of chosen classes."""
        return bool(self.classes)


class DeepLabProposer:
    """A DeepLabV3 model loaded once, proposing masks for any number of images.

    Parameters
    ----------
    model : str
        A key of :data:`MODELS` or :data:`MODEL_ALIASES`.
    weights : path-like, optional
        A local checkpoint; otherwise ``$NAPARI_DEEPSEG_WEIGHTS_DIR``, torch's
        cache or a download (see :mod:`napari_deepseg.core.io.weights`).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    allow_download : bool
        Whether a missing checkpoint may be downloaded.
    input_size : int or None
        Shorter side of the model's input in pixels (default 520); ``None`` or
        0 runs at the image's own resolution.
    tile : int
        Longest side processed in one pass; longer (resized) images are tiled.
    overlap : int
        Overlap of neighbouring tiles in pixels (blended linearly).
    precision : str
        ``float32`` or ``bfloat16`` (CPU autocast; faster on CPUs with bf16
        instructions, labels nearly identical).

    Examples
    --------
    >>> DeepLabProposer("mobilenet").model
    'deeplabv3_mobilenet_v3_large'
    """

    def __init__(self, model: str = DEFAULT_MODEL, weights=None, device: str = "auto", allow_download: bool = True,
                 input_size: int | None = INPUT_SIZE, tile: int = 1040, overlap: int = 128,
                 precision: str = "float32"):
        self.model = model_name(model)
        self.weights = weights
        self.device = device
        self.allow_download = allow_download
        if input_size is not None and (int(input_size) < 0 or 0 < int(input_size) < 16):
            raise ValueError(f"input_size must be >= 16 pixels (or 0/None for the image's own size), got {input_size}")
        self.input_size = int(input_size) if input_size else None
        if int(tile) < 64 or not 0 <= int(overlap) <= int(tile) // 2:
            raise ValueError(f"tile must be >= 64 and 0 <= overlap <= tile / 2, got tile={tile}, overlap={overlap}")
        self.tile, self.overlap = int(tile), int(overlap)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self._net = None

    def weights_url(self) -> str:
        """URL of the torchvision checkpoint of this model."""
        import torchvision.models.segmentation as seg

        return getattr(seg, MODELS[self.model][1]).COCO_WITH_VOC_LABELS_V1.url

    def load_model(self):
        """Build the network, load and check its weights, make it lean (once)."""
        if self._net is None:
            import torch
            import torchvision.models.segmentation as seg

            from ..features.resnet import resolve_device

            self._device = resolve_device(self.device)
            state = resolve_torchvision_weights(self.weights_url(), self.weights, self.allow_download)
            with torch.device("meta"):  # no random initialisation: every tensor comes from the checkpoint
                net = getattr(seg, MODELS[self.model][0])(
                    weights=None, weights_backbone=None, num_classes=len(VOC_CLASSES), aux_loss=False
                )
            check_state_dict(net, state, self.weights or self.weights_url(), self.model, ignore=("aux_classifier.",))
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("aux_classifier.")}, assign=True)
            net.aux_classifier = None
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
            fold_batchnorm(net)
            self._net = net.to(self._device, memory_format=torch.channels_last)
        return self._net

    def _forward(self, x):
        import torch

        net = self._net
        with torch.inference_mode():
            x = x.to(self._device)
            if self.precision == "bfloat16":
                with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
                    out = net.classifier(net.backbone(x)["out"])
            else:
                out = net.classifier(net.backbone(x)["out"])
            # DeepLabV3.forward upsamples to the input size the same way
            out = torch.nn.functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return out[0].float().cpu()

    def logits(self, image, progress: ProgressCallback | None = None, cancel: CancelToken | None = None):
        """Class scores at the model's resolution.

        Parameters
        ----------
        image : array-like
            ``(rows, cols)`` or ``(rows, cols, 3|4)``, any dtype (see
            :func:`~napari_deepseg.core.utils.validation.as_float_image`).

        Returns
        -------
        torch.Tensor
            float32 ``(21, h, w)`` with ``(h, w) = model_input_shape(...)``.
        """
        import torch

        rgb = rgb_image(image)
        self.load_model()
        shape = model_input_shape(rgb.shape[:2], self.input_size)
        x = to_tensor(rgb, size=shape)
        del rgb
        boxes = list(tiles(shape, self.tile, self.overlap))
        if len(boxes) == 1:
            check(cancel)
            report(progress, 0, 1, f"{self.model}: inference")
            out = self._forward(x)
            report(progress, 1, 1, f"{self.model}: inference")
            return out
        acc = torch.zeros((len(VOC_CLASSES),) + shape)
        wsum = torch.zeros(shape)
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            check(cancel)
            report(progress, i, len(boxes), f"{self.model}: tile {i + 1}/{len(boxes)}")
            w = torch.from_numpy(blend_weights(y1 - y0, x1 - x0, self.overlap))
            acc[:, y0:y1, x0:x1] += self._forward(x[..., y0:y1, x0:x1]) * w
            wsum[y0:y1, x0:x1] += w
        report(progress, len(boxes), len(boxes), f"{self.model}: tiles done")
        return acc / wsum

    def propose(self, image, classes=None, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> Proposal:
        """Propose a multi-class labelling, or a binary mask of ``classes``.

        Parameters
        ----------
        image : array-like
            ``(rows, cols)`` or ``(rows, cols, 3|4)``.
        classes : str or sequence, optional
            Object classes for a binary proposal (see :func:`parse_classes`);
            ``None`` gives the multi-class labelling.

        Returns
        -------
        Proposal
        """
        chosen = parse_classes(classes)
        shape = np.asarray(image).shape[:2]
        scores = self.logits(image, progress=progress, cancel=cancel)
        check(cancel)
        labels, conf, prob = labels_from_logits(scores, shape, chosen)
        names = ("background", "+".join(class_name(c) for c in chosen)) if chosen else VOC_CLASSES
        return Proposal(labels, conf, prob, tuple(names), chosen, self.model)


def _row_weights(out_rows: int, in_rows: int, start: int, stop: int):
    """Source rows and weights of bilinear resampling (``align_corners=False``) for rows ``start:stop``."""
    y = (np.arange(start, stop) + 0.5) * (in_rows / out_rows) - 0.5
    y = np.clip(y, 0, in_rows - 1)
    i0 = np.floor(y).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_rows - 1)
    return i0, i1, (y - i0).astype(np.float32)


def labels_from_logits(logits, shape, classes=(), max_bytes: int = 64 << 20):
    """Labels, confidence and object probability at full resolution, in row strips.

    The ``(C, h, w)`` logits are resampled bilinearly (``align_corners=False``,
    as ``torch.nn.functional.interpolate``) to ``shape`` — first along columns
    for all rows, then strip by strip along rows — and turned into
    probabilities with a softmax. With ``classes`` their probabilities are
    summed into one object class that wins where it beats every other class.

    Parameters
    ----------
    logits : torch.Tensor or numpy.ndarray
        ``(C, h, w)`` class scores.
    shape : tuple of int
        ``(rows, cols)`` of the output.
    classes : tuple of int
        Indices merged into the object; empty for multi-class labels.

    Returns
    -------
    labels, confidence, object_probability
        uint8, float32, float32 arrays of ``shape`` (see :class:`Proposal`).

    Examples
    --------
    >>> z = np.zeros((3, 1, 2), np.float32); z[1, 0, 0] = z[2, 0, 1] = 5.0
    >>> labels_from_logits(z, (1, 2))[0].tolist(), labels_from_logits(z, (1, 2), (1, 2))[0].tolist()
    ([[1, 2]], [[1, 1]])
    """
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(logits, np.float32) if not torch.is_tensor(logits) else logits).float()
    n, h, w = t.shape
    rows, cols = int(shape[0]), int(shape[1])
    with torch.inference_mode():
        if w != cols:
            t = F.interpolate(t[None], size=(h, cols), mode="bilinear", align_corners=False)[0]
        labels = np.empty((rows, cols), np.uint8)
        conf = np.empty((rows, cols), np.float32)
        prob = np.empty((rows, cols), np.float32)
        step = max(1, int(max_bytes // max(1, n * cols * 4 * 3)))
        chosen = torch.as_tensor(list(classes), dtype=torch.long)
        others = torch.as_tensor([c for c in range(n) if c not in set(classes)], dtype=torch.long)
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            if h == rows:
                strip = t[:, start:stop]
            else:
                i0, i1, wy = _row_weights(rows, h, start, stop)
                wy = torch.from_numpy(wy)[None, :, None]
                strip = t[:, i0] * (1 - wy) + t[:, i1] * wy
            p = torch.softmax(strip, dim=0)
            if len(classes):
                obj = p[chosen].sum(0)
                rest = p[others].max(0).values
                win = obj >= rest
                labels[start:stop] = win.numpy()
                conf[start:stop] = torch.where(win, obj, 1 - obj).numpy()
                prob[start:stop] = obj.numpy()
            else:
                best = p.max(0)
                labels[start:stop] = best.indices.numpy()
                conf[start:stop] = best.values.numpy()
                prob[start:stop] = (1 - p[0]).numpy()
    return labels, conf, prob


def propose(image, model: str = DEFAULT_MODEL, classes=None, weights=None, device: str = "auto",
            allow_download: bool = True, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None, **options) -> Proposal:
    """One-shot :meth:`DeepLabProposer.propose` (``options`` go to the constructor)."""
    proposer = DeepLabProposer(model, weights=weights, device=device, allow_download=allow_download, **options)
    return proposer.propose(image, classes=classes, progress=progress, cancel=cancel)


def proposal_scribbles(object_probability, object_threshold: float = 0.9, background_threshold: float = 0.1,
                       margin: int = 8) -> np.ndarray:
    """Seeds for the graph cut from a proposal's confidence.

    Confident interior becomes object strokes (1), confident far background
    becomes background strokes (2); the uncertain band around the proposal's
    boundary is left for the cut.

    Parameters
    ----------
    object_probability : numpy.ndarray
        float ``(rows, cols)`` in [0, 1].
    object_threshold, background_threshold : float
        Probability at or above which a pixel is confident object, at or below
        which it is confident background.
    margin : int
        Seeds keep this distance in pixels from the other side: object seeds
        from any pixel below ``object_threshold``, background seeds from any
        pixel above ``background_threshold``. A region thinner than twice the
        margin keeps its central half (the pixels farthest inside).

    Returns
    -------
    numpy.ndarray
        uint8 scribbles: 0 none, 1 object, 2 background.

    Raises
    ------
    ValueError
        For thresholds outside ``0 <= background < object <= 1`` or a negative margin.

    Examples
    --------
    >>> p = np.zeros((9, 9), np.float32); p[2:7, 2:7] = 1.0
    >>> s = proposal_scribbles(p, margin=1)
    >>> int(s[4, 4]), int(s[2, 2]), int(s[0, 0]), int(s[1, 4])
    (1, 0, 2, 0)
    """
    from scipy import ndimage as ndi

    p = np.asarray(object_probability, np.float32)
    if p.ndim != 2:
        raise ValueError(f"object_probability must be 2-D (rows, cols), got shape {p.shape}")
    if not 0.0 <= background_threshold < object_threshold <= 1.0:
        raise ValueError(
            "thresholds must satisfy 0 <= background_threshold < object_threshold <= 1, "
            f"got {background_threshold} and {object_threshold}"
        )
    if int(margin) < 0:
        raise ValueError(f"margin must be >= 0 pixels, got {margin}")
    out = np.zeros(p.shape, np.uint8)
    for value, region in ((1, p >= object_threshold), (2, p <= background_threshold)):
        if not region.any():
            continue
        if region.all():
            out[region] = value
            continue
        depth = ndi.distance_transform_edt(region)
        out[depth > min(float(margin), 0.5 * float(depth.max()))] = value
    return out


def refine_proposal(image, proposal: Proposal, backbone: str = "classic", object_threshold: float = 0.9,
                    background_threshold: float = 0.1, margin: int = 8, progress=None, cancel=None, **segment_options):
    """The project's graph cut seeded by a proposal's confident regions.

    Returns
    -------
    labels, scribbles : numpy.ndarray
        The cut (uint8, 1 = object) and the seeds it used.

    Raises
    ------
    ValueError
        When the proposal gives no confident object or no confident background
        (nothing to seed one side of the cut).
    """
    from ..cut.session import SegmentationSession

    seeds = proposal_scribbles(proposal.object_probability, object_threshold, background_threshold, margin)
    present = set(np.unique(seeds).tolist())
    if 1 not in present or 2 not in present:
        side = "object" if 1 not in present else "background"
        raise ValueError(
            f"the proposal has no confident {side} (object probability "
            f"{'>=' if side == 'object' else '<='} {object_threshold if side == 'object' else background_threshold}); "
            "paint strokes by hand or change the thresholds"
        )
    session = SegmentationSession(backbone)
    session.set_image(image, progress=progress, cancel=cancel)
    return session.segment(seeds, progress=progress, cancel=cancel, **segment_options), seeds
