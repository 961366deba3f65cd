"""CLIP's vision encoder (Hugging Face transformers) as a feature backbone.

The patch tokens of the last layer, without the CLS token, reshaped to their
grid, are the features: one cell per ``patch x patch`` input pixels. Inputs
larger than the checkpoint's 224 pixels use interpolated position embeddings
(``interpolate_pos_encoding=True``), so a large image gets a finer grid.

Weights come from the Hugging Face cache (``HF_HOME``, ``HF_HUB_OFFLINE`` are
honoured by transformers itself) or from a local folder written by
``save_pretrained``; loading never unpickles anything (safetensors, or
transformers' ``weights_only`` reader for old ``.bin`` files).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..io.lazy import rgb_channels
from ..utils.progress import check, report
from ..utils.validation import check_rgb_channels
from ..io.weights import WeightsUnavailableError, network_cause, unreachable_cause
from .base import FeatureExtractor, FeatureMap
from .compress import pca_compress

#: the original work's checkpoint (ViT-B/32, 768-dimensional tokens)
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_MODELS: dict = {}


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for no network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    """The Hugging Face hub's address (``HF_ENDPOINT``, by default https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"


def _hub_logger_level(level: int) -> int:
    """Set the ``huggingface_hub`` logger's level; returns the previous one."""
    log = logging.getLogger("huggingface_hub")
    old = log.level
    log.setLevel(level)
    return old


def load_clip_vision(checkpoint=DEFAULT_CLIP, device: str = "cpu", allow_download: bool = True):
    """A CLIP vision encoder in eval mode on ``device`` (cached per checkpoint and device).

    Parameters
    ----------
    checkpoint : str or path-like
        A Hugging Face model id (``openai/clip-vit-base-patch32``) or a local
        folder holding ``config.json`` and the weights (``save_pretrained``).
        The vision tower of a full CLIP checkpoint is used.
    device : str
        A torch device name (already resolved, see ``resnet.resolve_device``).
    allow_download : bool
        ``False`` only looks in the local cache.

    Notes
    -----
    A model already in the cache is loaded without contacting the hub. Before a
    download the hub (or the proxy in between) is probed with a 2 s timeout
    (:func:`~napari_deepseg.core.io.weights.unreachable_cause`): with no network
    the error comes in a second or two, not after the hub client's retries.

    Raises
    ------
    WeightsUnavailableError
        One line naming the checkpoint and how to provide it, when the weights
        are neither in the cache nor downloadable, or the folder is not a CLIP model.
    """
    key = (str(checkpoint), device)
    if key in _MODELS:
        return _MODELS[key]
    name = str(checkpoint)
    local = Path(name).expanduser()
    is_dir = local.is_dir()
    if local.is_file():
        raise WeightsUnavailableError(f"CLIP weights {name} is a file: pass a folder saved with save_pretrained "
                                      "(config.json + model.safetensors) or a Hugging Face model id")
    if not is_dir and (name.startswith((".", "/", "~")) or local.suffix):
        raise WeightsUnavailableError(f"CLIP checkpoint folder not found: {name}")
    # a model already in the cache is loaded without asking the hub (fast, and works offline)
    cached = not is_dir and clip_available(name)
    offline = hub_offline() or not allow_download or cached
    if not is_dir and not cached:
        # no copy and no network: say so now (before importing transformers, ~9 s here),
        # not after the hub client's 30-40 s of retries
        cause = ("HF_HUB_OFFLINE is set" if hub_offline() else "downloads are off" if not allow_download
                 else unreachable_cause(hub_endpoint()))
        if cause:
            raise clip_missing(name, cause)
    from transformers import CLIPVisionModel
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights were not used" for full CLIP checkpoints
    hub_level = _hub_logger_level(logging.ERROR)  # the hub client's "Retrying in 1s" lines
    bars = hf_logging.is_progress_bar_enabled()
    if offline or is_dir:
        hf_logging.disable_progress_bar()  # no download: transformers' "Loading weights" bar is noise
    try:
        model = CLIPVisionModel.from_pretrained(str(local) if is_dir else name, local_files_only=offline or is_dir)
    except Exception as exc:  # noqa: BLE001 - hub, network and format errors vary; one clear line
        if is_dir:
            raise WeightsUnavailableError(
                f"cannot load a CLIP vision model from folder {local}: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}") from None
        cause = ("HF_HUB_OFFLINE is set" if hub_offline() else "downloads are off" if not allow_download
                 else network_cause(exc))
        raise clip_missing(name, cause) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        _hub_logger_level(hub_level)
        if bars:
            hf_logging.enable_progress_bar()
    model = model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    _MODELS[key] = model
    return model


def hf_cache_dir() -> str:
    """The Hugging Face hub cache (``HF_HUB_CACHE``, or ``HF_HOME/hub``, by default ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # noqa: BLE001 - an odd install: say the default
        return str(Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def clip_missing(name: str, cause: str, option: str = "--weights") -> WeightsUnavailableError:
    """The error for CLIP weights that are neither in the cache nor downloadable (the facts, worded by each face)."""
    return WeightsUnavailableError(
        file=name, searched=[hf_cache_dir()], cause=cause, option=option, what="CLIP weights",
        local="a folder saved with save_pretrained", override_env=None,
        fetch="run it once with internet (the weights go to that cache)")


def clip_available(checkpoint=DEFAULT_CLIP) -> bool:
    """Whether the checkpoint is a local folder or already in the Hugging Face cache (no network)."""
    name = str(checkpoint)
    if Path(name).expanduser().is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str) and any(
            isinstance(try_to_load_from_cache(name, f), str)
            for f in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                      "pytorch_model.bin.index.json")
        )
    except Exception:  # noqa: BLE001 - an unusable cache means "not available"
        return False


def normalize_clip(batch):
    """CLIP's input normalisation of an ``(n, 3, h, w)`` tensor in [0, 1]."""
    import torch

    mean = torch.tensor(CLIP_MEAN, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean) / std


def patch_tokens(model, batch):
    """Patch tokens of a normalised ``(n, 3, h, w)`` batch as an ``(n, hidden, h/p, w/p)`` tensor.

    ``h`` and ``w`` must be multiples of the patch size ``p``; the CLS token is dropped.
    """
    p = model.config.patch_size
    n, _, h, w = batch.shape
    if h % p or w % p:
        raise ValueError(f"input size {h}x{w} is not a multiple of the patch size {p}")
    out = model(pixel_values=batch, interpolate_pos_encoding=True).last_hidden_state[:, 1:]
    return out.reshape(n, h // p, w // p, -1).permute(0, 3, 1, 2)


def grid_layout(shape, patch: int, resolution: int) -> tuple:
    """Stride and grid of a ``(rows, cols)`` image whose longer side goes in as about ``resolution`` pixels.

    Every grid cell covers ``stride x stride`` image pixels, fed to the network
    as one ``patch x patch`` patch: the image (padded to ``grid * stride``) is
    resized to ``grid * patch``.

    Returns
    -------
    tuple
        ``(stride, grid_rows, grid_cols)``.

    Examples
    --------
    >>> grid_layout((321, 481), 32, 448)
    (35, 10, 14)
    """
    rows, cols = shape
    cells = max(1, int(resolution) // int(patch))
    stride = max(1, -(-max(rows, cols) // cells))
    return stride, -(-rows // stride), -(-cols // stride)


def compress_tokens(grid: np.ndarray, n_components: int) -> np.ndarray:
    """PCA of a ``(rows, cols, channels)`` token grid to ``n_components`` channels.

    A CLIP grid has fewer cells than channels (140 x 768 for ViT-B/32 at 448 px):
    the principal axes then come from the SVD of the centred cells, far cheaper
    than the 768 x 768 covariance's eigen-decomposition; larger grids use
    :func:`~.compress.pca_compress`. BLAS runs single-threaded (small products).

    Examples
    --------
    >>> compress_tokens(np.random.default_rng(0).normal(size=(3, 4, 50)).astype(np.float32), 5).shape
    (3, 4, 5)
    """
    from ..utils.threads import single_threaded_blas

    rows, cols, ch = grid.shape
    with single_threaded_blas():
        if rows * cols > ch or n_components >= ch:
            return pca_compress(grid, n_components, max_samples=8_000)
        flat = grid.reshape(-1, ch).astype(np.float64)
        centred = flat - flat.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:n_components].T
        out = np.zeros((flat.shape[0], n_components), np.float32)
        out[:, : axes.shape[1]] = centred @ axes
    return out.reshape(rows, cols, n_components)


class CLIPFeatures(FeatureExtractor):
    """CLIP vision patch tokens on their grid, optionally compressed by PCA.

    Parameters
    ----------
    weights : str or path-like
        Hugging Face model id or local folder (``checkpoint`` is an alias).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    resolution : int
        Pixels of the longer image side given to the network (a multiple of the
        patch size is used). 224 is CLIP's own size; the default 448 gives a
        14-cell grid on the longer side with ViT-B/32.
    n_components : int
        Channels kept after PCA; ``0`` keeps the raw tokens.
    allow_download : bool
        Whether missing weights may be downloaded.
    rgb_channels : tuple of 3 int, optional
        The image channels the network reads as red, green and blue (an image
        with an explicit channel axis, e.g. RGB + near-infrared: ``(3, 0, 1)``
        puts NIR in the red input). ``None``: the first three (one channel repeated).
    """

    name = "clip"
    needs_weights = True

    def __init__(self, weights=None, device: str = "auto", resolution: int = 448, n_components: int = 32,
                 allow_download: bool = True, checkpoint=None, rgb_channels=None):
        self.weights = str(checkpoint or weights or DEFAULT_CLIP)
        self.rgb_channels = check_rgb_channels(rgb_channels, "rgb_channels")
        self.device = device
        if int(resolution) < 1:
            raise ValueError(f"resolution must be >= 1 pixel, got {resolution}")
        self.resolution = int(resolution)
        if int(n_components) < 0:
            raise ValueError(f"n_components must be >= 0 (0 = raw tokens), got {n_components}")
        self.n_components = int(n_components)
        self.allow_download = allow_download

    def params(self) -> dict:
        return {"weights": self.weights, "resolution": self.resolution, "n_components": self.n_components,
                **({} if self.rgb_channels is None else {"rgb_channels": self.rgb_channels})}

    def load_model(self):
        """The encoder on the resolved device (loaded once per process)."""
        from .resnet import resolve_device

        self._device = resolve_device(self.device)
        return load_clip_vision(self.weights, self._device, self.allow_download)

    reads_tiles = True

    def _extract(self, image, progress, cancel):
        import torch

        image = rgb_channels(image, self.rgb_channels, "rgb_channels")
        model = self.load_model()
        check(cancel)
        rows, cols = image.shape[:2]
        patch = int(model.config.patch_size)
        stride, gr, gc = grid_layout((rows, cols), patch, self.resolution)
        x = network_input(image, stride, (gr, gc), patch, progress, cancel)
        check(cancel)
        with torch.inference_mode():
            tokens = patch_tokens(model, normalize_clip(x).to(self._device))
            grid = tokens[0].permute(1, 2, 0).float().cpu().numpy()
        steps = -(-gr // strip_cells(stride, gc))
        report(progress, steps, steps + 1, "compressing features")
        if self.n_components:
            grid = compress_tokens(grid, self.n_components)
        report(progress, steps + 1, steps + 1, "clip features")
        return FeatureMap(np.ascontiguousarray(grid, np.float32), stride, (rows, cols))


#: rows of a resizing strip hold about this many image pixels (at least 4 grid rows)
STRIP_PIXELS = 1 << 22


def strip_cells(stride: int, grid_cols: int) -> int:
    """Grid rows per resizing strip: about :data:`STRIP_PIXELS` image pixels, at least 4.

    Examples
    --------
    >>> strip_cells(35, 14), strip_cells(358, 14)
    (244, 4)
    """
    return max(4, STRIP_PIXELS // max(1, stride * stride * grid_cols))


def network_input(image, stride: int, grid: tuple, patch: int, progress=None, cancel=None):
    """The ``(1, 3, gr * patch, gc * patch)`` float tensor CLIP sees, resized strip by strip.

    The image (edge-padded to ``grid * stride``) is resized with antialiased
    bilinear interpolation so that each ``stride``-pixel cell becomes one
    ``patch``-pixel patch. Strips of :func:`strip_cells` grid rows are read with
    one cell of context above and below (two for ``stride`` 1), more than the
    filter's reach, and cropped: the result equals resizing the whole image.

    Parameters
    ----------
    image : LazyImage
        The image, read region by region.
    stride, grid, patch
        From :func:`grid_layout` and the model's patch size.
    progress, cancel
        Reported / checked once per strip.
    """
    import torch
    import torch.nn.functional as F

    gr, gc = grid
    halo = 1 if stride >= 2 else 2
    step = strip_cells(stride, gc)
    spans = [(g, min(gr, g + step)) for g in range(0, gr, step)]
    out = torch.empty((1, 3, gr * patch, gc * patch), dtype=torch.float32)
    for i, (g0, g1) in enumerate(spans):
        check(cancel)
        report(progress, i, len(spans) + 1, f"clip features, resizing strip {i + 1}/{len(spans)}")
        r0, r1 = max(0, g0 - halo), min(gr, g1 + halo)
        rgb = image.read_padded(r0 * stride, r1 * stride, 0, gc * stride, mode="edge")
        rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb[..., :3]
        x = torch.from_numpy(np.ascontiguousarray(rgb, np.float32)).permute(2, 0, 1)[None]
        with torch.inference_mode():
            x = F.interpolate(x, size=((r1 - r0) * patch, gc * patch), mode="bilinear", align_corners=False,
                              antialias=True)
        out[:, :, g0 * patch : g1 * patch] = x[:, :, (g0 - r0) * patch : (g1 - r0) * patch]
    return out
