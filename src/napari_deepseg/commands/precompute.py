"""``napari-deepseg precompute``: an image's features into a zarr feature cache, for later sessions."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError, add_backbone_options, backbone_params


def progress_bar(quiet: bool):
    """A tqdm bar on stderr and a ``progress(done, total, message)`` callback driving it."""
    from tqdm import tqdm

    bar = tqdm(total=1, desc="features", unit="step", file=sys.stderr, disable=quiet, dynamic_ncols=True)

    def progress(done: int, total: int, message: str = "") -> None:
        if bar.total != total:
            bar.reset(total=max(1, total))
        bar.n = min(done, bar.total)
        if message:
            bar.set_description_str(message, refresh=False)
        bar.refresh()

    return bar, progress


def run(args) -> int:
    """Compute (or find) the features of one image and store them in a zarr feature cache."""
    from ..core import SegmentationSession
    from ..core.io.feature_cache import store_path
    from ..core.io.files import read_image

    if Path(args.output).suffix.lower() != ".zarr":
        raise CLIError(f"cannot write features to {args.output}: use a path ending in .zarr")
    store_path(args.output)  # an existing file of that name: one line, before reading the image
    image = read_image(args.image)
    session = SegmentationSession(args.features, feature_cache=args.output, **backbone_params(args))
    t0 = time.perf_counter()
    bar, progress = progress_bar(args.quiet)
    try:
        entry = session.set_image(image, progress=progress)
        fm = entry.features  # weight-free backbones compute their features on first use: now
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    if not args.quiet:
        grid = "x".join(str(v) for v in fm.data.shape)
        print(f"{args.output}: {args.features} features {grid} (rows x cols x channels) at stride {fm.stride} "
              f"for a {fm.image_shape[1]}x{fm.image_shape[0]} image, {seconds:.2f} s", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``precompute`` sub-command."""
    pre = sub.add_parser("precompute", help="compute an image's features once into a zarr feature cache "
                                            "(reused by 'segment --feature-cache' and the widget)")
    pre.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF): grayscale, RGB or RGBA, 8/16-bit or float")
    pre.add_argument("-o", "--output", required=True, help="feature cache, a path ending in .zarr (created or added to)")
    add_backbone_options(pre)
    pre.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    pre.set_defaults(func=run)
