"""Gradient saliency maps of an ImageNet VGG16: vanilla backprop, deconvnet, guided backprop.

All three differentiate a class score (the logit before the softmax) with
respect to the input pixels; they differ only in how the gradient passes a
ReLU ``y = max(x, 0)`` on its way back (``g`` is the gradient arriving from
above):

* ``backprop`` (Simonyan et al. 2014): the true gradient, ``g · [x > 0]``;
* ``deconv`` (Zeiler & Fergus 2014): ``max(g, 0)`` — only positive gradients
  pass, whatever the forward activation;
* ``guided`` (Springenberg et al. 2015): ``max(g, 0) · [x > 0]`` — only
  positive gradients through positive activations.

Max-pooling routes the gradient to the maximum of each window in all three
modes (the deconvnet's "switches"). The map is the largest absolute gradient
over the colour channels, scaled to [0, 1] by its 99.5th percentile.

Large images are processed at their own resolution in overlapping tiles
blended without seams; the class is then chosen once, from the whole image
resized to 224 x 224, so every tile explains the same class.

Examples
--------
>>> import torch
>>> x = torch.tensor([-1.0, 2.0, 3.0], requires_grad=True)
>>> g = torch.tensor([5.0, -4.0, 6.0])
>>> [relu_backward(m, x, g).tolist() for m in MODES]
[[0.0, -4.0, 6.0], [5.0, 0.0, 6.0], [0.0, 0.0, 6.0]]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .inference import blend_weights, check_state_dict, tiles, to_tensor
from ..io.lazy import as_lazy_image
from ..utils.progress import CancelToken, ProgressCallback, check, report
from ..io.weights import resolve_torchvision_weights

#: the three ways a gradient passes a ReLU backwards (see the module docstring)
MODES = ("backprop", "deconv", "guided")
#: arithmetic of the forward and backward passes
PRECISIONS = ("float32", "bfloat16")
#: ImageNet classes of VGG16
N_CLASSES = 1000
#: side of the input the class is chosen on when the image is tiled
CLASS_INPUT = 224


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is one of :data:`MODES`, else raise ``ValueError``."""
    if mode not in MODES:
        raise ValueError(f"saliency mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def relu_backward(mode: str, x, grad):
    """The gradient a ReLU passes back in ``mode`` for input ``x`` and upstream ``grad``."""
    if mode == "backprop":
        return grad * (x > 0).to(grad.dtype)
    if mode == "deconv":
        return grad.clamp(min=0)
    return grad.clamp(min=0) * (x > 0).to(grad.dtype)


@functools.cache
def _relu_classes():
    """The autograd function and module behind :func:`saliency_relu` (built once, torch imported lazily)."""
    import torch

    class ModeReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, mode):
            ctx.mode = mode
            if mode != "deconv":
                ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, grad):
            if ctx.mode == "deconv":
                return grad.clamp(min=0), None
            (x,) = ctx.saved_tensors
            return relu_backward(ctx.mode, x, grad), None

    class SaliencyReLU(torch.nn.Module):
        """A ReLU whose backward pass follows a saliency mode."""

        def __init__(self, mode: str):
            super().__init__()
            self.mode = check_mode(mode)

        def forward(self, x):
            return ModeReLU.apply(x, self.mode)

        def extra_repr(self):
            return f"mode={self.mode}"

    return ModeReLU, SaliencyReLU


def saliency_relu(mode: str):
    """A ``torch.nn.Module`` ReLU (forward ``max(x, 0)``) whose backward follows ``mode``."""
    return _relu_classes()[1](mode)


def set_relu_mode(model, mode: str) -> int:
    """Make every ReLU of ``model`` pass gradients back as ``mode`` does (in place).

    ``torch.nn.ReLU`` modules are replaced by :func:`saliency_relu` modules;
    ones already replaced change their mode.

    Returns
    -------
    int
        Number of ReLUs set.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.ReLU())
    >>> set_relu_mode(net, "guided"), net[1].mode
    (2, 'guided')
    """
    import torch

    check_mode(mode)
    module_class = _relu_classes()[1]
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.ReLU:
                setattr(parent, name, saliency_relu(mode))
                count += 1
            elif isinstance(child, module_class):
                child.mode = mode
                count += 1
    return count


def input_gradient(model, x, class_index: int | None = None):
    """Gradient of one class score with respect to the input ``x``.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier with its ReLUs set by :func:`set_relu_mode`.
    x : torch.Tensor
        ``(1, 3, h, w)`` normalised input.
    class_index : int, optional
        Class whose score is differentiated; ``None`` takes the top class.

    Returns
    -------
    gradient : torch.Tensor
        ``(3, h, w)``.
    class_index : int
    score : float
        The class's logit.
    """
    import torch

    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        scores = model(x)
        k = int(scores[0].argmax()) if class_index is None else int(class_index)
        score = scores[0, k]
        (grad,) = torch.autograd.grad(score, x)
    return grad[0].detach(), k, float(score.detach())


def gradient_map(gradient) -> np.ndarray:
    """``(h, w)`` float32 map: the largest absolute gradient over the channels.

    Examples
    --------
    >>> import torch
    >>> gradient_map(torch.tensor([[[1.0, -3.0]], [[-2.0, 0.5]]])).tolist()
    [[2.0, 3.0]]
    """
    return gradient.abs().amax(dim=0).float().cpu().numpy().astype(np.float32, copy=False)


def normalise_map(values: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its ``percentile`` (values above it are clipped).

    Examples
    --------
    >>> normalise_map(np.array([0.0, 1.0, 2.0, 4.0]), percentile=100).tolist()
    [0.0, 0.25, 0.5, 1.0]
    """
    v = np.asarray(values, np.float32)
    top = float(np.percentile(v, percentile)) if v.size else 0.0
    if top <= 0:
        return np.zeros_like(v)
    return np.clip(v / top, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class SaliencyMap:
    """The saliency of one image.

    Attributes
    ----------
    map : numpy.ndarray
        float32 ``(rows, cols)`` in [0, 1].
    mode : str
        One of :data:`MODES`.
    class_index : int
        ImageNet class explained.
    class_name : str
        Its name (or ``"class K"`` when the names are unknown).
    tiles : int
        Number of tiles the image was processed in.
    """

    map: np.ndarray
    mode: str
    class_index: int
    class_name: str
    tiles: int


def imagenet_class_name(index: int) -> str:
    """The ImageNet name of class ``index`` (from torchvision's weight metadata)."""
    try:
        from torchvision.models import VGG16_Weights

        return str(VGG16_Weights.IMAGENET1K_V1.meta["categories"][int(index)])
    except (ImportError, IndexError, KeyError):
        return f"class {int(index)}"


class SaliencyModel:
    """An ImageNet VGG16 (or any classifier) loaded once, computing saliency maps.

    Parameters
    ----------
    weights : path-like, optional
        A local VGG16 checkpoint; otherwise ``$NAPARI_DEEPSEG_WEIGHTS_DIR``,
        torch's cache or a download.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    allow_download : bool
        Whether a missing checkpoint may be downloaded.
    tile : int
        Longest side processed in one pass; larger images are tiled.
    overlap : int
        Overlap of neighbouring tiles in pixels (blended linearly).
    network : torch.nn.Module, optional
        Use this classifier instead of VGG16 (tests use a tiny one).
    precision : str
        ``float32`` or ``bfloat16`` (CPU autocast: faster on CPUs with bf16
        instructions; the map changes by a few percent of its range).
    """

    def __init__(self, weights=None, device: str = "auto", allow_download: bool = True, tile: int = 768,
                 overlap: int = 64, network=None, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.weights = weights
        self.device = device
        self.allow_download = allow_download
        if int(tile) < 32 or not 0 <= int(overlap) <= int(tile) // 2:
            raise ValueError(f"tile must be >= 32 and 0 <= overlap <= tile / 2, got tile={tile}, overlap={overlap}")
        self.tile, self.overlap = int(tile), int(overlap)
        self._net = network
        self._device = "cpu"
        if network is not None:
            self._prepare(network)

    @staticmethod
    def weights_url() -> str:
        """URL of torchvision's ImageNet VGG16 checkpoint."""
        from torchvision.models import VGG16_Weights

        return VGG16_Weights.IMAGENET1K_V1.url

    def _prepare(self, net):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self._net = net

    def load_model(self):
        """Build VGG16 and load its checked weights (once)."""
        if self._net is None:
            import torch
            from torchvision.models import vgg16

            from ..features.resnet import resolve_device

            self._device = resolve_device(self.device)
            state = resolve_torchvision_weights(self.weights_url(), self.weights, self.allow_download)
            with torch.device("meta"):  # no random initialisation: every tensor comes from the checkpoint
                net = vgg16(weights=None)
            check_state_dict(net, state, self.weights or self.weights_url(), "vgg16")
            net.load_state_dict(state, assign=True)
            self._prepare(net.to(self._device, memory_format=torch.channels_last))
        return self._net

    def top_class(self, rgb: np.ndarray) -> int:
        """The top class of the whole image resized to 224 x 224."""
        import torch

        net = self.load_model()
        with torch.inference_mode():
            scores = net(to_tensor(rgb, size=(CLASS_INPUT, CLASS_INPUT)).to(self._device))
        return int(scores[0].argmax())

    def _gradient(self, net, x, class_index):
        if self.precision == "float32":
            return input_gradient(net, x, class_index)
        import torch

        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            grad, k, score = input_gradient(net, x, class_index)
        return grad.float(), k, score

    def compute(self, image, mode: str = "guided", class_index: int | None = None, normalise: bool = True,
                progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> SaliencyMap:
        """Saliency map of ``image`` for ``class_index`` (or the top class).

        Parameters
        ----------
        image : array-like
            ``(rows, cols)`` or ``(rows, cols, 3|4)``, any dtype; numpy, dask or
            zarr (read tile by tile, never whole).
        mode : str
            ``backprop``, ``deconv`` or ``guided``.
        class_index : int, optional
            ImageNet class (0-999); ``None`` explains the top class.
        normalise : bool
            Scale to [0, 1] (:func:`normalise_map`); otherwise raw gradients.

        Raises
        ------
        ValueError
            For an unknown mode, a class index out of range or a bad image.
        """
        check_mode(mode)
        net = self.load_model()
        n_classes = _n_outputs(net)
        if class_index is not None:
            try:
                class_index = int(class_index)
            except (TypeError, ValueError):
                raise ValueError(f"class_index must be an integer, got {class_index!r}") from None
            if not 0 <= class_index < n_classes:
                raise ValueError(f"class_index must be in 0..{n_classes - 1}, got {class_index}")
        img = as_lazy_image(image)  # numpy, dask or zarr: read tile by tile
        shape = img.shape[:2]
        if min(shape) < 32:
            raise ValueError(f"image must be at least 32 x 32 pixels for a saliency map, got {shape}")
        set_relu_mode(net, mode)
        boxes = list(tiles(shape, self.tile, self.overlap))
        if len(boxes) > 1 and class_index is None:
            class_index = self.top_class(_rgb(class_thumbnail(img)))
        acc = np.zeros(shape, np.float32)
        wsum = np.zeros(shape, np.float32) if len(boxes) > 1 else None
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            check(cancel)
            report(progress, i, len(boxes), f"{mode} saliency, tile {i + 1}/{len(boxes)}")
            x = to_tensor(_rgb(img.read(slice(y0, y1), slice(x0, x1)))).to(self._device)
            grad, class_index, _ = self._gradient(net, x, class_index)
            values = gradient_map(grad)
            if wsum is None:
                acc = values
            else:
                w = blend_weights(y1 - y0, x1 - x0, self.overlap)
                acc[y0:y1, x0:x1] += values * w
                wsum[y0:y1, x0:x1] += w
        report(progress, len(boxes), len(boxes), f"{mode} saliency")
        if wsum is not None:
            acc /= wsum
        out = normalise_map(acc) if normalise else acc
        return SaliencyMap(out, mode, int(class_index), imagenet_class_name(class_index), len(boxes))


def _rgb(tile: np.ndarray) -> np.ndarray:
    """A float32 ``(rows, cols, 3)`` tile (grey repeated)."""
    return np.repeat(tile, 3, axis=-1) if tile.shape[-1] == 1 else tile


def class_thumbnail(img) -> np.ndarray:
    """The image the class is chosen on, before its resize to :data:`CLASS_INPUT`: the image itself,
    or for sides above 4 x :data:`CLASS_INPUT` its block mean by an integer factor (read strip by strip).

    Examples
    --------
    >>> from napari_deepseg.core.io.lazy import LazyImage
    >>> class_thumbnail(LazyImage(np.zeros((4000, 1800), np.uint8))).shape
    (2000, 900, 1)
    """
    factor = max(1, min(img.shape[:2]) // (4 * CLASS_INPUT))
    return img.block_mean(factor)


def _n_outputs(net) -> int:
    """Number of classes of a classifier (its last ``Linear``)."""
    import torch

    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    return int(last[-1].out_features) if last else N_CLASSES


def saliency(image, mode: str = "guided", class_index: int | None = None, weights=None, device: str = "auto",
             allow_download: bool = True, progress=None, cancel=None, **options) -> SaliencyMap:
    """One-shot :meth:`SaliencyModel.compute` with VGG16 (``options`` go to the constructor)."""
    model = SaliencyModel(weights=weights, device=device, allow_download=allow_download, **options)
    return model.compute(image, mode=mode, class_index=class_index, progress=progress, cancel=cancel)
