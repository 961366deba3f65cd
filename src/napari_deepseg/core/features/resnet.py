"""torchvision's ImageNet ResNet-50 with its head stripped, as a feature backbone."""

from __future__ import annotations

import numpy as np

from ..io.lazy import LazyImage, rgb_channels
from ..utils.progress import check, report
from ..utils.validation import check_rgb_channels
from ..io.weights import resolve_torchvision_weights
from .base import FeatureExtractor, FeatureMap
from .compress import pca_compress, pca_fit, pca_project

LAYER_STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
LAYER_CHANNELS = {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048}
#: uncompressed grids up to this size are held whole and PCA-fitted on random cells; larger
#: ones are projected tile by tile on axes fitted to sample windows (see ``ResNet50Features``)
MAX_GRID_BYTES = 256 << 20
#: side in pixels of a PCA sample window (with the halo around it), and the most windows used
SAMPLE_WINDOW = 256
MAX_SAMPLE_WINDOWS = 16
#: grid cells the PCA axes are fitted on
PCA_SAMPLES = 8_000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_device(device: str = "auto") -> str:
    """Map ``auto|cpu|cuda|mps`` to an available torch device name.

    Raises
    ------
    ValueError
        For an unknown name, or a device that is not available here.
    """
    import torch

    dev = (device or "auto").lower()
    if dev == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if dev == "cpu":
        return dev
    if dev == "cuda" and torch.cuda.is_available():
        return dev
    if dev == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return dev
    if dev in ("cuda", "mps"):
        raise ValueError(f"device '{dev}' is not available on this machine; use 'auto' or 'cpu'")
    raise ValueError(f"device must be one of auto, cpu, cuda, mps; got {device!r}")


def shrink_factor(shape, max_side: int) -> int:
    """Smallest integer factor bringing the longer side to ``max_side`` or less (1 if it fits).

    Examples
    --------
    >>> shrink_factor((2048, 1500), 1024), shrink_factor((1024, 10), 1024), shrink_factor((5000, 10), 0)
    (2, 1, 1)
    """
    if max_side <= 0:
        return 1
    return max(1, -(-max(shape) // max_side))


def parse_layers(layers) -> tuple:
    """Normalise ``"layer2,layer3"`` or a sequence to a sorted tuple of layer names.

    Examples
    --------
    >>> parse_layers("layer3, layer2")
    ('layer2', 'layer3')
    """
    names = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else [str(s) for s in layers]
    names = [n for n in names if n]
    bad = [n for n in names if n not in LAYER_STRIDES]
    if not names or bad:
        raise ValueError(f"layers must be chosen from {', '.join(LAYER_STRIDES)}; got {layers!r}")
    return tuple(sorted(set(names), key=lambda n: LAYER_STRIDES[n]))


def _check_state_dict(model, state: dict, source) -> None:
    """Raise one clear ``ValueError`` if ``state`` does not fit ``model`` (the head is ignored)."""
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        k for k in expected
        if k in state and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label} {len(keys)} (e.g. {keys[0]})"
            for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
            if keys
        )
        raise ValueError(f"weights {source} do not fit torchvision's resnet50: {detail}")


class ResNet50Features(FeatureExtractor):
    """ResNet-50 (ImageNet) activations, one layer or a multi-layer hypercolumn.

    The network runs fully convolutionally on the image at its own size, tile by
    tile with a halo, so memory stays bounded for large images. Layers coarser
    than the finest chosen one are bilinearly resampled to its grid and
    concatenated; the stack is compressed by PCA to ``n_components`` channels at
    the native stride of the finest layer.

    Parameters
    ----------
    layers : str or sequence of str
        Any of ``layer1`` (stride 4) ... ``layer4`` (stride 32). The original
        notebook used ``layer4``; the default hypercolumn ``layer2,layer3`` is
        sharper (stride 8).
    n_components : int
        Channels kept after PCA.
    weights : path-like, optional
        A local state-dict file; otherwise torchvision's cache / download.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    allow_download : bool
        Whether a missing checkpoint may be downloaded.
    tile : int
        Tile size in pixels (a multiple of 32).
    halo : int
        Context added around each tile in pixels (a multiple of 32). The default
        160 covers the receptive field of ``layer3`` exactly (tiled = untiled).
    max_side : int
        Images whose longer side exceeds this are shrunk by the smallest integer
        factor that fits (block mean) before the network, as segment-anything
        does with its 1024-pixel input; the grid's stride grows by that factor.
        ``0`` never shrinks. Keeps a 2048 x 2048 image at 1/4 of the compute.
    rgb_channels : tuple of 3 int, optional
        The image channels the network reads as red, green and blue (an image
        with an explicit channel axis, e.g. RGB + near-infrared: ``(3, 0, 1)``
        puts NIR in the red input). ``None``: the first three (one channel repeated).
    max_grid_bytes : int
        Largest uncompressed grid (cells x channels x 4 bytes) held whole. Up to
        it, the PCA is fitted on up to 8000 random cells of the whole grid.
        Beyond it (e.g. a 25 MP image at ``max_side=0``: 2.4 GB for
        ``layer2,layer3``) the PCA is fitted first on the cells of a few
        :data:`SAMPLE_WINDOW`-pixel windows at seeded random places (each with
        its halo), and every tile is projected as it comes out of the network,
        so only the compressed grid is ever held whole.

    Notes
    -----
    The image is read tile by tile (with its halo) through
    :class:`~napari_deepseg.core.io.lazy.LazyImage`, so a dask or zarr image is never
    loaded whole; a shrunk image (``max_side``) is built strip by strip.
    """

    name = "resnet50"
    needs_weights = True

    def __init__(
        self,
        layers="layer2,layer3",
        n_components: int = 32,
        weights=None,
        device: str = "auto",
        allow_download: bool = True,
        tile: int = 1024,
        halo: int = 160,
        max_side: int = 1024,
        max_grid_bytes: int = MAX_GRID_BYTES,
        rgb_channels=None,
    ):
        self.layers = parse_layers(layers)
        self.rgb_channels = check_rgb_channels(rgb_channels, "rgb_channels")
        self.n_components = int(n_components)
        self.weights = weights
        self.device = device
        self.allow_download = allow_download
        if tile % 32 or halo % 32 or tile <= 0 or halo < 0:
            raise ValueError(f"tile and halo must be multiples of 32, got tile={tile}, halo={halo}")
        self.tile, self.halo = int(tile), int(halo)
        if int(max_side) < 0:
            raise ValueError(f"max_side must be >= 0 (0 = full resolution), got {max_side}")
        self.max_side = int(max_side)
        self.max_grid_bytes = int(max_grid_bytes)
        self._model = None

    def params(self) -> dict:
        return {
            "layers": self.layers,
            "n_components": self.n_components,
            "weights": str(self.weights or ""),
            "tile": self.tile,
            "halo": self.halo,
            "max_side": self.max_side,
            "max_grid_bytes": self.max_grid_bytes,
            **({} if self.rgb_channels is None else {"rgb_channels": self.rgb_channels}),
        }

    @staticmethod
    def weights_url() -> str:
        """URL of the ImageNet checkpoint used (torchvision's IMAGENET1K_V2)."""
        from torchvision.models import ResNet50_Weights

        return ResNet50_Weights.IMAGENET1K_V2.url

    def load_model(self):
        """Build the truncated network and load its weights (once)."""
        if self._model is None:
            import torch
            from torchvision.models import resnet50

            model = resnet50(weights=None)
            self._device = resolve_device(self.device)
            state = resolve_torchvision_weights(self.weights_url(), self.weights, self.allow_download)
            _check_state_dict(model, state, self.weights or self.weights_url())
            model.fc = torch.nn.Identity()  # the classifier head is not used (a fine-tuned head of any size is fine)
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
            last = max(LAYER_STRIDES[n] for n in self.layers)
            keep = [n for n, s in LAYER_STRIDES.items() if s <= last]
            for name in ("layer1", "layer2", "layer3", "layer4"):
                if name not in keep:
                    setattr(model, name, torch.nn.Identity())
            self._model = model.eval().to(self._device)
        return self._model

    def _forward(self, batch):
        m = self._model
        x = m.maxpool(m.relu(m.bn1(m.conv1(batch))))
        outs = {}
        for name in LAYER_STRIDES:
            x = getattr(m, name)(x)
            if name in self.layers:
                outs[name] = x
            if len(outs) == len(self.layers):
                break
        return outs

    reads_tiles = True

    def _tile_features(self, image: LazyImage, box, padded_shape):
        """Uncompressed features ``(cells, cells, channels)`` of the tile ``box = (y0, y1, x0, x1)``.

        The tile is read with its halo (clipped to the padded image, whose padding
        is reflected on the fly) and cropped back to the tile's own cells.
        """
        import torch
        import torch.nn.functional as F

        y0, y1, x0, x1 = box
        prow, pcol = padded_shape
        stride = LAYER_STRIDES[self.layers[0]]
        hy0, hx0 = max(0, y0 - self.halo), max(0, x0 - self.halo)
        hy1, hx1 = min(prow, y1 + self.halo), min(pcol, x1 + self.halo)
        mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
        rgb = image.read_padded(hy0, hy1, hx0, hx1, mode)
        rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        patch = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
        patch = ((patch - mean) / std).to(self._device)
        with torch.inference_mode():
            outs = self._forward(patch)
            size = ((hy1 - hy0) // stride, (hx1 - hx0) // stride)
            feats = [
                o if o.shape[-2:] == size else F.interpolate(o, size=size, mode="bilinear", align_corners=False)
                for o in outs.values()
            ]
            block = torch.cat(feats, dim=1)[0].permute(1, 2, 0).float().cpu().numpy()
        del outs, feats
        gy, gx = (y0 - hy0) // stride, (x0 - hx0) // stride
        return block[gy : gy + (y1 - y0) // stride, gx : gx + (x1 - x0) // stride]

    def sample_windows(self, padded_shape) -> list:
        """The PCA sample windows ``(y0, y1, x0, x1)`` of a padded image: seeded, independent of the tiling.

        Examples
        --------
        >>> len(ResNet50Features().sample_windows((4096, 4096)))
        8
        """
        prow, pcol = padded_shape
        side = SAMPLE_WINDOW
        stride = LAYER_STRIDES[self.layers[0]]
        cells = (min(side, prow) // stride) * (min(side, pcol) // stride)
        count = min(MAX_SAMPLE_WINDOWS, -(-PCA_SAMPLES // max(1, cells)))
        rng = np.random.default_rng(0)
        boxes = []
        for _ in range(count):
            y = 32 * int(rng.integers(0, max(0, prow - side) // 32 + 1))
            x = 32 * int(rng.integers(0, max(0, pcol - side) // 32 + 1))
            boxes.append((y, min(prow, y + side), x, min(pcol, x + side)))
        return boxes

    def channels(self) -> int:
        """Channels of the uncompressed hypercolumn."""
        return sum(LAYER_CHANNELS[n] for n in self.layers)

    def _extract(self, image, progress, cancel):
        image = rgb_channels(image, self.rgb_channels, "rgb_channels")
        self.load_model()
        rows, cols = image.shape[:2]
        factor = shrink_factor((rows, cols), self.max_side)
        if factor > 1:  # block means, read strip by strip
            report(progress, 0, 1, f"resnet50 features, shrinking the image by {factor}")
            image = LazyImage(image.block_mean(factor))
        srows, scols = image.shape[:2]
        prow, pcol = srows + (-srows % 32), scols + (-scols % 32)
        stride = LAYER_STRIDES[self.layers[0]]
        gshape = (prow // stride, pcol // stride)
        tiles = [(y, min(prow, y + self.tile), x, min(pcol, x + self.tile))
                 for y in range(0, prow, self.tile) for x in range(0, pcol, self.tile)]
        whole = gshape[0] * gshape[1] * self.channels() * 4 <= self.max_grid_bytes
        windows = [] if whole else self.sample_windows((prow, pcol))
        total = len(windows) + len(tiles)
        done = 0
        sample = []
        for box in windows:
            check(cancel)
            report(progress, done, total, f"resnet50 features, PCA sample window {done + 1}/{len(windows)}")
            block = self._tile_features(image, box, (prow, pcol))
            sample.append(block.reshape(-1, block.shape[-1]))
            done += 1
        if windows:
            sample = np.concatenate(sample)
            rng = np.random.default_rng(0)
            if sample.shape[0] > PCA_SAMPLES:
                sample = sample[np.sort(rng.choice(sample.shape[0], PCA_SAMPLES, replace=False))]
            mean, axes = pca_fit(sample, self.n_components)
            del sample
        grid = None
        for i, (y0, y1, x0, x1) in enumerate(tiles):
            check(cancel)
            report(progress, done, total, f"resnet50 features, tile {i + 1}/{len(tiles)}")
            block = self._tile_features(image, (y0, y1, x0, x1), (prow, pcol))
            if not whole:
                block = pca_project(block, mean, axes)
            if grid is None:
                grid = np.empty(gshape + (block.shape[-1],), np.float32)
            grid[y0 // stride : y1 // stride, x0 // stride : x1 // stride] = block
            del block
            done += 1
        report(progress, total, total, "compressing features" if whole else "resnet50 features")
        if whole:
            grid = pca_compress(grid, self.n_components, max_samples=PCA_SAMPLES)
        return FeatureMap(np.ascontiguousarray(grid), stride * factor, (rows, cols))
