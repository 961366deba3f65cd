"""Lean whole-network inference shared by the proposal and saliency models.

Small pure helpers: checking a checkpoint against a network, folding batch-norm
into the preceding convolution, turning a napari-ordered image into the one
normalised ``NCHW`` tensor a torchvision model expects, and splitting a large
image into overlapping tiles that are blended back without seams.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from ..utils.validation import as_float_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_state_dict(model, state: dict, source, arch: str, ignore: Iterable[str] = ()) -> None:
    """Raise one clear ``ValueError`` if ``state`` does not fit ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The freshly built network.
    state : dict
        The checkpoint's state dict.
    source : str or path
        Where the checkpoint came from (named in the message).
    arch : str
        The network's name (named in the message).
    ignore : iterable of str
        Key prefixes left out on both sides (heads that are not used).

    Raises
    ------
    ValueError
        Counting missing keys, unexpected keys and wrong shapes, each with an example.
    """
    prefixes = tuple(ignore)

    def keep(k):
        return not (prefixes and k.startswith(prefixes))

    expected = {k: v for k, v in model.state_dict().items() if keep(k)}
    given = {k: v for k, v in state.items() if keep(k)}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [k for k in expected if k in given and tuple(getattr(given[k], "shape", ())) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if keys
        )
        raise ValueError(f"weights {source} do not fit torchvision's {arch}: {detail}")


def fold_batchnorm(module):
    """Fold every eval-mode ``BatchNorm2d`` into the ``Conv2d`` registered just before it (in place).

    torchvision registers a convolution and its batch-norm one after the other
    (``conv1``/``bn1`` in a ResNet bottleneck, ``Conv2dNormActivation`` in a
    MobileNet, the ASPP branches of DeepLabV3), so folding adjacent pairs
    removes one pass over every activation map. The batch-norm becomes
    ``Identity``. Only valid for inference (``module.eval()``).

    Returns
    -------
    int
        Number of pairs folded.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    >>> _ = net[1].running_mean.uniform_()
    >>> x = torch.rand(1, 3, 8, 8); before = net(x)
    >>> fold_batchnorm(net), bool(torch.allclose(before, net(x), atol=1e-5))
    (1, True)
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for (name_a, a), (name_b, b) in itertools.pairwise(children):
            if (type(a) is torch.nn.Conv2d and type(b) is torch.nn.BatchNorm2d
                    and b.track_running_stats and a.out_channels == b.num_features):
                setattr(parent, name_a, fuse_conv_bn_eval(a.eval(), b.eval()))
                setattr(parent, name_b, torch.nn.Identity())
                folded += 1
    return folded


def rgb_image(image, name: str = "image") -> np.ndarray:
    """A validated float32 ``(rows, cols, 3)`` image in [0, 1] (grayscale repeated).

    Examples
    --------
    >>> rgb_image(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 3)
    """
    arr = as_float_image(image, name=name)
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr


def to_tensor(rgb: np.ndarray, size=None, channels_last: bool = True):
    """ImageNet-normalised ``(1, 3, h, w)`` float32 tensor of an ``(rows, cols, 3)`` image.

    Parameters
    ----------
    rgb : numpy.ndarray
        float32 ``(rows, cols, 3)`` in [0, 1] (napari order).
    size : tuple of int, optional
        ``(h, w)`` to resize to (bilinear with antialiasing, as torchvision's
        transforms do); ``None`` keeps the size.
    channels_last : bool
        Return the tensor in ``torch.channels_last`` memory format (faster
        convolutions on CPU).

    Examples
    --------
    >>> to_tensor(np.zeros((4, 6, 3), np.float32), size=(2, 3)).shape
    torch.Size([1, 3, 2, 3])
    """
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    if size is not None and tuple(size) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def tile_spans(length: int, tile: int, overlap: int) -> list:
    """``(start, stop)`` of the fewest equal tiles of at most ``tile`` pixels covering ``length``.

    Neighbouring tiles overlap by at least ``overlap`` pixels; the tiles are
    made as small as that allows (rather than ``tile`` wide with a large last
    overlap), so the extra work of tiling stays near ``overlap / tile``. A
    length that fits in one tile gives one span.

    Examples
    --------
    >>> tile_spans(1000, 512, 64), tile_spans(300, 512, 64)
    ([(0, 376), (312, 688), (624, 1000)], [(0, 300)])
    """
    if length <= tile:
        return [(0, int(length))]
    n = -(-(length - overlap) // (tile - overlap))
    size = -(-(length + (n - 1) * overlap) // n)
    starts = [round(i * (length - size) / (n - 1)) for i in range(n)]
    return [(s, s + size) for s in starts]


def tiles(shape, tile: int, overlap: int) -> Iterator[tuple]:
    """``(y0, y1, x0, x1)`` boxes of overlapping tiles covering a ``(rows, cols)`` image.

    Examples
    --------
    >>> list(tiles((300, 700), 512, 64))
    [(0, 300, 0, 382), (0, 300, 318, 700)]
    """
    rows, cols = shape
    for y0, y1 in tile_spans(rows, tile, overlap):
        for x0, x1 in tile_spans(cols, tile, overlap):
            yield y0, y1, x0, x1


def blend_weights(height: int, width: int, ramp: int) -> np.ndarray:
    """``(height, width)`` float32 weights rising linearly over ``ramp`` pixels at every edge.

    Tiles are accumulated as ``sum(w * value) / sum(w)``: in an overlap the
    weights cross-fade, so the blended result has no seam; away from overlaps a
    pixel's value is its tile's own (weights never reach zero).

    Examples
    --------
    >>> blend_weights(5, 5, 2)[2].tolist()
    [0.3333333432674408, 0.6666666865348816, 1.0, 0.6666666865348816, 0.3333333432674408]
    """
    def ramp_1d(n):
        i = np.arange(n, dtype=np.float32)
        edge = np.minimum(i + 1, n - i)
        return np.minimum(edge / float(ramp + 1), 1.0) if ramp > 0 else np.ones(n, np.float32)

    return np.outer(ramp_1d(height), ramp_1d(width)).astype(np.float32)
