"""Will it fit? Memory estimates checked before the expensive steps, with a way out in the message.

An image larger than memory allows must meet a clear message that names what
works instead (the coarse-to-fine cut, downsampling, a tile, precomputed
features), not the kernel's out-of-memory killer. The per-pixel figures below
were measured with ``benchmarks/size_scaling.py`` (peak resident memory minus
the loaded image, divided by the pixels) and rounded up.
"""

from __future__ import annotations

import os

#: bytes per pixel of the full-resolution single-level binary cut (8-neighbour graph + star edges):
#: measured 470 at 4 MP (docs/performance.md)
SINGLE_LEVEL_BYTES_PER_PIXEL = 500
#: bytes per pixel of the coarse-to-fine cut of the weight-free default: measured about 80 at 25 and 64 MP
MULTILEVEL_BYTES_PER_PIXEL = 100
#: bytes per pixel of alpha-expansion (three or more labels) at full resolution (estimate: float64
#: unaries per label plus one binary graph per expansion)
MULTILABEL_BYTES_PER_PIXEL = 600
#: bytes per pixel of the ``classic`` filter bank while it is computed (before PCA)
CLASSIC_FEATURES_BYTES_PER_PIXEL = 500
#: fraction of the available memory an estimate may take
HEADROOM = 0.9


class ImageTooLargeError(ValueError):
    """An operation would need more memory than this machine has available."""


def available_bytes() -> int:
    """Memory available to this process now (``MemAvailable`` on Linux), in bytes.

    Falls back to the physical memory where ``/proc/meminfo`` is missing, and can be
    overridden with the environment variable ``NAPARI_DEEPSEG_MEMORY_LIMIT`` (bytes,
    or with a ``K``/``M``/``G`` suffix), e.g. to rehearse a smaller machine.
    """
    limit = os.environ.get("NAPARI_DEEPSEG_MEMORY_LIMIT")
    if limit:
        return parse_bytes(limit)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def parse_bytes(text: str) -> int:
    """``"8G"`` -> bytes.

    Examples
    --------
    >>> parse_bytes("1.5K"), parse_bytes("2G"), parse_bytes("100")
    (1536, 2147483648, 100)
    """
    s = str(text).strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if s and s[-1] in scale:
            return int(float(s[:-1]) * scale[s[-1]])
        return int(float(s))
    except ValueError:
        raise ValueError(f"memory limit must be a number of bytes such as 8G or 512M, got {text!r}") from None


def check_fits(need: int, what: str, shape, options: str) -> None:
    """Raise :class:`ImageTooLargeError` if ``need`` bytes exceed the memory available.

    Parameters
    ----------
    need : int
        Estimated peak bytes of the operation.
    what : str
        The operation, e.g. ``"the single-level cut"``.
    shape : tuple
        ``(rows, cols)`` of the image, for the message.
    options : str
        What works instead, e.g. ``"use the coarse-to-fine cut (multilevel=None)"``.

    Examples
    --------
    >>> check_fits(10, "a tiny cut", (2, 2), "nothing")  # fits: no error
    """
    free = available_bytes()
    if need > HEADROOM * free:
        rows, cols = shape[:2]
        raise ImageTooLargeError(
            f"{what} of a {cols}x{rows} image ({rows * cols / 1e6:.0f} MP) needs about {need / 1e9:.1f} GB "
            f"but {free / 1e9:.1f} GB is available; {options}"
        )
