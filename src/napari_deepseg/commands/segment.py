"""``napari-deepseg segment``: one image, a scribble image, a label mask out."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError, add_backbone_options, backbone_params


def run(args) -> int:
    """Segment one image from a scribble image and write the label mask."""
    from ..core import SegmentationSession
    from ..core.io import LABEL_SUFFIXES, read_image, read_labels, write_labels
    from ..core.validation import as_float_image, check_scribbles

    if Path(args.output).suffix.lower() not in LABEL_SUFFIXES:
        raise CLIError(f"cannot write labels to {args.output}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    image = read_image(args.image)
    scribbles = read_labels(args.scribbles)
    check_scribbles(scribbles, as_float_image(image).shape[:2], name=f"scribbles {args.scribbles}")
    t0 = time.perf_counter()
    session = SegmentationSession(args.features, **backbone_params(args))
    session.set_image(image)
    t1 = time.perf_counter()
    mask = session.segment(scribbles, preset=args.preset, lam=args.lam, sigma=args.sigma, iterations=args.iterations)
    t2 = time.perf_counter()
    out = write_labels(args.output, mask)
    if not args.quiet:
        print(f"{out}: {mask.shape[1]}x{mask.shape[0]} labels {sorted(set(mask.ravel().tolist()))}, "
              f"features {t1 - t0:.2f} s, cut {t2 - t1:.2f} s", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``segment`` sub-command."""
    from ..core import PRESETS
    from ..core.session import DEFAULT_ITERATIONS

    seg = sub.add_parser("segment", help="segment an image from a scribble image")
    seg.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF): grayscale, RGB or RGBA, 8/16-bit or float")
    seg.add_argument("--scribbles", required=True, help="label image: 0 none, 1 object, 2 background, k class k")
    seg.add_argument("-o", "--output", required=True, help="output label image (.png or .tif)")
    add_backbone_options(seg)
    seg.add_argument("--preset", default="default", choices=PRESETS, help="energy preset")
    seg.add_argument("--lambda", dest="lam", type=float, default=None, help="smoothness weight (preset default)")
    seg.add_argument("--sigma", type=float, default=None, help="contrast scale (estimated from the image)")
    seg.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="appearance refits (default preset)")
    seg.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    seg.set_defaults(func=run)
