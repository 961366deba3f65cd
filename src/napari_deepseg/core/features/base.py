"""The one interface every feature backbone fills in, and the feature map it returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from ..utils.progress import CancelToken, ProgressCallback


@dataclass(frozen=True)
class FeatureMap:
    """Features of one image at the backbone's native stride.

    Attributes
    ----------
    data : numpy.ndarray
        float32 ``(grid_rows, grid_cols, channels)``.
    stride : int
        Pixels of the image per grid cell along each axis (1 = full resolution).
    image_shape : tuple of int
        ``(rows, cols)`` of the image the features were computed from. The grid
        covers ``grid * stride`` pixels, which may exceed the image (padding).
    """

    data: np.ndarray
    stride: int
    image_shape: tuple

    @property
    def channels(self) -> int:
        """Number of feature channels."""
        return int(self.data.shape[-1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the native-stride array."""
        return int(self.data.nbytes)

    def full_res_nbytes(self) -> int:
        """Bytes the features would take upsampled to every image pixel."""
        rows, cols = self.image_shape
        return rows * cols * self.channels * 4

    def upsample_rows(self, start: int, stop: int) -> np.ndarray:
        """Bilinearly upsample the image rows ``start:stop`` to full resolution.

        Pixel ``y`` samples grid coordinate ``(y + 0.5) / stride - 0.5`` (the
        ``align_corners=False`` convention), so strips computed separately join
        without seams.

        Returns
        -------
        numpy.ndarray
            float32 ``(stop - start, cols, channels)``.
        """
        rows, cols = self.image_shape
        if self.stride == 1:
            return self.data[start:stop, :cols]
        return upsample_grid(self.data, self.stride, start, stop, cols)

    def iter_full_res(self, max_bytes: int = 128 << 20, overlap: int = 0) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, block)`` strips of full-resolution features.

        Each block holds image rows ``start - overlap_before : stop`` where
        ``overlap_before = min(overlap, start)``; callers that compare a row with
        the previous one ask for ``overlap=1``.
        """
        rows, cols = self.image_shape
        per_row = max(1, cols * self.channels * 4)
        step = max(8, int(max_bytes // per_row))
        for start in range(0, rows, step):
            stop = min(rows, start + step)
            lo = max(0, start - overlap)
            yield start, stop, self.upsample_rows(lo, stop)

    def full_res(self) -> np.ndarray:
        """All features upsampled to ``(rows, cols, channels)`` (mind the memory)."""
        return self.upsample_rows(0, self.image_shape[0])


def upsample_grid(grid: np.ndarray, stride: int, start: int, stop: int, cols: int) -> np.ndarray:
    """Bilinear upsampling of rows ``start:stop`` of a ``(h, w, c)`` grid by ``stride``.

    Examples
    --------
    >>> g = np.arange(4, dtype=np.float32).reshape(2, 2, 1)
    >>> upsample_grid(g, 2, 0, 4, 4)[..., 0].shape
    (4, 4)
    """
    import torch
    import torch.nn.functional as F

    h = grid.shape[0]
    g0 = max(0, start // stride - 1)
    g1 = min(h, -(-stop // stride) + 1)
    band = torch.from_numpy(np.ascontiguousarray(grid[g0:g1])).permute(2, 0, 1)[None]
    with torch.inference_mode():
        up = F.interpolate(band, scale_factor=stride, mode="bilinear", align_corners=False)
    # interpolate clamps at the band's edge; rows near an interior band edge use the
    # extra grid row of context fetched above, so the crop below is exact.
    off = g0 * stride
    out = up[0, :, start - off : stop - off, :cols].permute(1, 2, 0)
    return np.ascontiguousarray(out.numpy(), dtype=np.float32)


class FeatureExtractor(abc.ABC):
    """Template every backbone fills in.

    Subclasses set :attr:`name` and :attr:`needs_weights` and implement
    :meth:`_extract`. The default preset picks its appearance model from the
    features' stride: a colour mixture at stride 1, a linear model on coarser
    (deep) grids. Construction must be cheap; loading a network
    happens on the first :meth:`extract`.
    """

    #: registry name
    name: str = ""
    #: whether pretrained weights must be loaded
    needs_weights: bool = False
    #: leading feature channels the default preset's weight-free appearance model adds to
    #: colour (``None``: the session's ``APPEARANCE_CHANNELS``); stride-1 backbones only
    appearance_channels = None
    #: whether :meth:`_extract` takes a :class:`~napari_deepseg.core.io.lazy.LazyImage` and reads
    #: it tile by tile (``False``: it gets the whole float32 image, as a numpy array)
    reads_tiles: bool = False

    def params(self) -> dict:
        """Parameters that change the features (part of the cache key)."""
        return {}

    def extract(
        self,
        image: np.ndarray,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelToken] = None,
    ) -> FeatureMap:
        """Compute features of a float32 ``(rows, cols, channels)`` image in [0, 1].

        Parameters
        ----------
        image : array-like or LazyImage
            A float32 image as returned by :func:`napari_deepseg.core.utils.validation.as_float_image`,
            any image that function accepts, or a lazy one (dask, zarr,
            :class:`~napari_deepseg.core.io.lazy.LazyImage`). Backbones with
            :attr:`reads_tiles` read it tile by tile and never load it whole.
        progress : callable, optional
            ``progress(done, total, message)``, once per tile.
        cancel : CancelToken, optional
            Checked between tiles or filters.

        Returns
        -------
        FeatureMap
        """
        from ..io.lazy import as_lazy_image

        lazy = as_lazy_image(image)
        return self._extract(lazy if self.reads_tiles else lazy.read_all(), progress, cancel)

    @abc.abstractmethod
    def _extract(self, image, progress, cancel) -> FeatureMap:
        """Backbone-specific extraction."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
