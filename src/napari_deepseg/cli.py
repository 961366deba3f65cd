"""Command line: ``napari-deepseg segment | demo``, two thin faces of the core.

Errors are reported as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

PROG = "napari-deepseg"


#: suffixes Pillow writes the demo picture as
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _backbone_params(args) -> dict:
    """Keyword parameters for the chosen backbone from the parsed options."""
    params = {}
    if args.features == "resnet50":
        params.update(device=args.device, weights=args.weights)
        if args.layers:
            params["layers"] = args.layers
        if args.max_side is not None:
            params["max_side"] = args.max_side
    elif args.weights:
        raise CLIError(f"--weights is only used by pretrained backbones, not by '{args.features}'")
    return params


def cmd_segment(args) -> int:
    """Segment one image from a scribble image and write the label mask."""
    from .core import SegmentationSession
    from .core.io import LABEL_SUFFIXES, read_image, read_labels, write_labels
    from .core.validation import as_float_image, check_scribbles

    if Path(args.output).suffix.lower() not in LABEL_SUFFIXES:
        raise CLIError(f"cannot write labels to {args.output}: use a file name ending in {', '.join(LABEL_SUFFIXES)}")
    image = read_image(args.image)
    scribbles = read_labels(args.scribbles)
    check_scribbles(scribbles, as_float_image(image).shape[:2], name=f"scribbles {args.scribbles}")
    t0 = time.perf_counter()
    session = SegmentationSession(args.features, **_backbone_params(args))
    session.set_image(image)
    t1 = time.perf_counter()
    mask = session.segment(scribbles, preset=args.preset, lam=args.lam, sigma=args.sigma, iterations=args.iterations)
    t2 = time.perf_counter()
    out = write_labels(args.output, mask)
    if not args.quiet:
        print(f"{out}: {mask.shape[1]}x{mask.shape[0]} labels {sorted(set(mask.ravel().tolist()))}, "
              f"features {t1 - t0:.2f} s, cut {t2 - t1:.2f} s", file=sys.stderr)
    return 0


def _demo_backbone(requested: str):
    """``(name, params, note)``: resnet50 when its weights are on disk, else classic."""
    from .core.features import ResNet50Features
    from .core.weights import find_local_weights

    if requested not in ("auto", "resnet50"):
        return requested, {}, None
    if find_local_weights(ResNet50Features.weights_url()) is not None:
        return "resnet50", {"allow_download": False}, None
    note = ("pretrained resnet50 weights are not available offline "
            f"({Path(ResNet50Features.weights_url()).name} not cached); using the weight-free 'classic' features")
    if requested == "resnet50":
        raise CLIError(note.split(";")[0] + "; run `napari-deepseg segment --features resnet50` once online")
    return "classic", {}, note


def cmd_demo(args) -> int:
    """Segment a bundled sample with its bundled scribbles; write image | scribbles | result."""
    from PIL import Image

    from . import samples
    from .core import SegmentationSession
    from .core.visualize import demo_figure

    out = Path(args.output)
    if out.suffix.lower() not in PICTURE_SUFFIXES:
        raise CLIError(f"cannot write the demo picture to {out}: use a file name ending in {', '.join(PICTURE_SUFFIXES)}")
    image, scribbles = {"cat": samples.cat_sample, "aerial": samples.aerial_sample}[args.sample]()
    name, params, note = _demo_backbone(args.features)
    if note:
        print(f"{PROG}: {note}", file=sys.stderr)
    t0 = time.perf_counter()
    session = SegmentationSession(name, **params)
    session.set_image(image)
    t1 = time.perf_counter()
    result = session.segment(scribbles)
    t2 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(demo_figure(image, scribbles, result)).save(out)
    print(f"{out}: '{args.sample}' sample, {name} features {t1 - t0:.2f} s, cut {t2 - t1:.2f} s, "
          f"object {100 * (result == 1).mean():.1f}% of the image")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-deepseg`` command."""
    from .core import PRESETS, available_backbones
    from .core.session import DEFAULT_ITERATIONS

    parser = OneLineParser(prog=PROG, description="Scribble segmentation with deep features and graph cuts.")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment an image from a scribble image")
    seg.add_argument("image", help="image file (PNG, JPEG, BMP, TIFF): grayscale, RGB or RGBA, 8/16-bit or float")
    seg.add_argument("--scribbles", required=True, help="label image: 0 none, 1 object, 2 background, k class k")
    seg.add_argument("-o", "--output", required=True, help="output label image (.png or .tif)")
    seg.add_argument("--features", default="classic", choices=available_backbones(), help="feature backbone")
    seg.add_argument("--preset", default="default", choices=PRESETS, help="energy preset")
    seg.add_argument("--lambda", dest="lam", type=float, default=None, help="smoothness weight (preset default)")
    seg.add_argument("--sigma", type=float, default=None, help="contrast scale (estimated from the image)")
    seg.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="appearance refits (default preset)")
    seg.add_argument("--weights", default=None, help="local weights file for pretrained backbones")
    seg.add_argument("--layers", default=None, help="resnet50 layers, e.g. layer4 or layer2,layer3")
    seg.add_argument("--max-side", type=int, default=None,
                     help="resnet50: shrink images whose longer side exceeds this (default 1024; 0 = never)")
    seg.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    seg.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    seg.set_defaults(func=cmd_segment)

    demo = sub.add_parser("demo", help="segment a bundled sample offline and write a picture")
    demo.add_argument("-o", "--output", default="demo.png", help="output picture (PNG)")
    demo.add_argument("--sample", default="cat", choices=("cat", "aerial"))
    demo.add_argument("--features", default="auto", help="auto (resnet50 if its weights are cached, else classic)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    # torch's CUDA wheels pull in triton (torch.compile's kernel compiler) with
    # torchvision: ~180 MB of resident memory this command never uses. Without it,
    # torch falls back to eager execution, which is all the CLI runs.
    sys.modules.setdefault("triton", None)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, RuntimeError, OSError, KeyError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
