"""Advice on a training run: too few labelled pairs before it, a near-zero validation score after it.

Both faces (the ``train`` command, the *Train & predict* widget) say these as
warnings; training still runs. The numbers are rules of thumb for binary
segmentation at the default image sizes, not guarantees.
"""

from __future__ import annotations

from typing import Optional

#: image/label pairs a model typically needs before its validation score means something
TYPICAL_PAIRS = {
    "unet": 20,             # trained from scratch
    "autoencoder": 20,      # the encoder is pretrained on the same few images only
    "resnet34-unet": 10,    # ImageNet encoder (20 when it starts from random weights)
    "clip-seg": 10,         # frozen CLIP encoder, a small decoder
    "pointclip": 20,        # clicks are sampled per image, the images still have to vary
}
#: a best validation score (Dice or IoU) below this is "near zero"
LOW_SCORE = 0.1


def typical_pairs(model: str, pretrained: bool = True) -> int:
    """Pairs ``model`` typically needs (from-scratch figure when a pretrained encoder is missing).

    Examples
    --------
    >>> typical_pairs("unet"), typical_pairs("resnet34-unet"), typical_pairs("resnet34-unet", pretrained=False)
    (20, 10, 20)
    """
    n = TYPICAL_PAIRS.get(model, 20)
    return n if pretrained else max(n, TYPICAL_PAIRS["unet"])


def data_advice(model: str, n_pairs: int, pretrained: bool = True, val_fraction: float = 0.1) -> Optional[str]:
    """A warning when ``n_pairs`` labelled images are too few for ``model``, else ``None``.

    Examples
    --------
    >>> data_advice("unet", 40) is None
    True
    >>> data_advice("unet", 2)
    'only 2 labelled image/label pairs for unet, which typically needs 20 or more (1 of them is kept for validation): expect a poor model; label more images (or predict, correct and add the corrections), or use the Scribble segmentation widget for a few images'
    """
    need = typical_pairs(model, pretrained)
    if n_pairs >= need:
        return None
    val = min(n_pairs - 1, max(1, round(n_pairs * val_fraction))) if n_pairs >= 2 else 0  # as split_samples
    return (f"only {n_pairs} labelled image/label pairs for {model}, which typically needs {need} or more "
            f"({val} of them {'is' if val == 1 else 'are'} kept for validation): expect a poor model; label more "
            "images (or predict, correct and add the corrections), or use the Scribble segmentation widget for a "
            "few images")


def score_advice(model: str, score: float, n_pairs: int, monitor: str = "dice",
                 pretrained: bool = True) -> Optional[str]:
    """A warning when the best validation score is near zero, else ``None``.

    Examples
    --------
    >>> score_advice("unet", 0.85, 50) is None
    True
    >>> score_advice("unet", 0.003, 2)
    'best validation Dice 0.003 is near zero: the model has not learnt the object; with 2 labelled pairs (unet typically needs 20 or more) label more images, or train for more epochs, and check that the masks mark the object (non-zero = object)'
    """
    if not score == score or score >= LOW_SCORE:  # NaN: nothing was scored, said elsewhere
        return None
    need = typical_pairs(model, pretrained)
    name = {"dice": "Dice", "iou": "IoU"}.get(monitor, monitor)
    few = f"with {n_pairs} labelled pairs ({model} typically needs {need} or more) label more images, or " \
        if n_pairs < need else ""
    return (f"best validation {name} {score:.3f} is near zero: the model has not learnt the object; {few}"
            "train for more epochs, and check that the masks mark the object (non-zero = object)")
