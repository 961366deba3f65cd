"""``napari-deepseg saliency``: a VGG16 gradient saliency map of one image."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import CLIError

#: suffixes the map can be written as (float TIFF; 8-bit PNG)
MAP_SUFFIXES = (".tif", ".tiff", ".png")


def run(args) -> int:
    """Compute the map and write it (float32 TIFF in [0, 1], or 8-bit PNG)."""
    import numpy as np

    from ..core.io.files import read_image
    from ..core.models.saliency import SaliencyModel

    out = Path(args.output)
    if out.suffix.lower() not in MAP_SUFFIXES:
        raise CLIError(f"cannot write a map to {out}: use a file name ending in {', '.join(MAP_SUFFIXES)}")
    model = SaliencyModel(weights=args.weights, device=args.device, tile=args.tile, precision=args.precision)
    image = read_image(args.image)
    t0 = time.perf_counter()
    result = model.compute(image, mode=args.mode, class_index=args.class_index)
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        from PIL import Image

        Image.fromarray(np.round(result.map * 255).astype(np.uint8)).save(out)
    else:
        import tifffile

        tifffile.imwrite(str(out), result.map)
    if not args.quiet:
        print(f"{out}: {result.mode} saliency of class {result.class_index} ({result.class_name}), "
              f"{result.tiles} tile{'s' if result.tiles > 1 else ''}, {seconds:.2f} s", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """Add the ``saliency`` sub-command."""
    from ..core.models.saliency import MODES

    sa = sub.add_parser("saliency", help="gradient saliency map of an ImageNet VGG16",
                        description="Vanilla gradient (backprop), deconvnet or guided backprop of a class score; "
                                    "the map is the largest absolute gradient over the colour channels, in [0, 1].")
    sa.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF), at least 32 x 32")
    sa.add_argument("--mode", default="guided", choices=MODES, help="how gradients pass the ReLUs (default guided)")
    sa.add_argument("--class-index", type=int, default=None, help="ImageNet class 0-999 (default: the top class)")
    sa.add_argument("--weights", default=None, help="local VGG16 checkpoint (.pth/.pt/.safetensors)")
    sa.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    sa.add_argument("--precision", default="float32", choices=("float32", "bfloat16"),
                    help="bfloat16: faster on CPUs with bf16 instructions")
    sa.add_argument("--tile", type=int, default=768, help="larger images are processed in tiles of at most this size")
    sa.add_argument("-o", "--output", required=True, help="output map: .tif (float32) or .png (8-bit)")
    sa.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    sa.set_defaults(func=run)
