"""torchvision's ImageNet ResNet-50 with its head stripped, as a feature backbone."""

from __future__ import annotations

import numpy as np

from ..progress import check, report
from ..weights import resolve_torchvision_weights
from .base import FeatureExtractor, FeatureMap
from .compress import pca_compress

LAYER_STRIDES = {"layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
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
    ):
        self.layers = parse_layers(layers)
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
        self._model = None

    def params(self) -> dict:
        return {
            "layers": self.layers,
            "n_components": self.n_components,
            "weights": str(self.weights or ""),
            "tile": self.tile,
            "halo": self.halo,
            "max_side": self.max_side,
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

    def _extract(self, image, progress, cancel):
        import torch
        import torch.nn.functional as F

        self.load_model()
        rows, cols = image.shape[:2]
        factor = shrink_factor((rows, cols), self.max_side)
        rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
        if factor > 1:
            from skimage.transform import downscale_local_mean

            even = np.pad(rgb, ((0, -rows % factor), (0, -cols % factor), (0, 0)), mode="edge")
            rgb = downscale_local_mean(even, (factor, factor, 1)).astype(np.float32)
        srows, scols = rgb.shape[:2]
        pr, pc = -srows % 32, -scols % 32
        padded = np.pad(rgb, ((0, pr), (0, pc), (0, 0)), mode="reflect" if min(srows, scols) > 1 else "edge")
        stride = LAYER_STRIDES[self.layers[0]]
        prow, pcol = padded.shape[:2]
        grid = None
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        tiles = [(y, x) for y in range(0, prow, self.tile) for x in range(0, pcol, self.tile)]
        for i, (y0, x0) in enumerate(tiles):
            check(cancel)
            report(progress, i, len(tiles), f"resnet50 features, tile {i + 1}/{len(tiles)}")
            y1, x1 = min(prow, y0 + self.tile), min(pcol, x0 + self.tile)
            hy0, hx0 = max(0, y0 - self.halo), max(0, x0 - self.halo)
            hy1, hx1 = min(prow, y1 + self.halo), min(pcol, x1 + self.halo)
            patch = torch.from_numpy(np.ascontiguousarray(padded[hy0:hy1, hx0:hx1])).permute(2, 0, 1)[None]
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
            if grid is None:
                grid = np.empty((prow // stride, pcol // stride, block.shape[-1]), np.float32)
            gy, gx = (y0 - hy0) // stride, (x0 - hx0) // stride
            grid[y0 // stride : y1 // stride, x0 // stride : x1 // stride] = block[
                gy : gy + (y1 - y0) // stride, gx : gx + (x1 - x0) // stride
            ]
        report(progress, len(tiles), len(tiles), "compressing features")
        data = pca_compress(grid, self.n_components, max_samples=8_000)
        del grid
        return FeatureMap(np.ascontiguousarray(data), stride * factor, (rows, cols))
