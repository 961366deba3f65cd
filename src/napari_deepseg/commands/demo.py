"""``napari-deepseg demo``: segment a bundled sample offline and write a picture."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._common import PROG, CLIError

#: suffixes Pillow writes the demo picture as
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _demo_backbone(requested: str):
    """``(name, params, note)``: resnet50 when its weights are on disk, else classic."""
    from ..core.features import ResNet50Features
    from ..core.io.weights import find_local_weights

    if requested not in ("auto", "resnet50"):
        return requested, {}, None
    if find_local_weights(ResNet50Features.weights_url()) is not None:
        return "resnet50", {"allow_download": False}, None
    note = ("pretrained resnet50 weights are not available offline "
            f"({Path(ResNet50Features.weights_url()).name} not cached); using the weight-free 'classic' features")
    if requested == "resnet50":
        raise CLIError(note.split(";")[0] + "; run `napari-deepseg segment --features resnet50` once online")
    return "classic", {}, note


def save_samples(folder) -> list:
    """Write every bundled sample as ``NAME.png`` + ``NAME-scribbles.png`` (0/1/2) into ``folder``; returns the paths."""
    from PIL import Image

    from .. import samples
    from ..core.io.files import write_labels

    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise CLIError(f"cannot save the samples in {root}: it is a file, not a folder")
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in (("cat", samples.cat_sample), ("aerial", samples.aerial_sample)):
        image, scribbles = make()
        Image.fromarray(image).save(root / f"{name}.png")
        write_labels(root / f"{name}-scribbles.png", scribbles)
        written += [root / f"{name}.png", root / f"{name}-scribbles.png"]
    return written


def run(args) -> int:
    """Segment a bundled sample with its bundled scribbles; write image | scribbles | result.

    With ``--save-sample DIR`` only write the samples as files for the other commands.
    """
    from PIL import Image

    from .. import samples
    from ..core import SegmentationSession
    from ..core.io.visualize import demo_figure

    if args.save_sample is not None:
        written = save_samples(args.save_sample)
        print("\n".join(str(p) for p in written))
        print(f"try: {PROG} segment {written[0]} --scribbles {written[1]} -o cat-mask.png", file=sys.stderr)
        return 0
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


def add_parser(sub) -> None:
    """Add the ``demo`` sub-command."""
    demo = sub.add_parser("demo", help="segment a bundled sample offline and write a picture")
    demo.add_argument("-o", "--output", default="demo.png", help="output picture (PNG)")
    demo.add_argument("--sample", default="cat", choices=("cat", "aerial"))
    demo.add_argument("--features", default="auto", help="auto (resnet50 if its weights are cached, else classic)")
    demo.add_argument("--save-sample", default=None, metavar="DIR",
                      help="write the samples as files instead (cat.png, cat-scribbles.png, aerial.png, "
                           "aerial-scribbles.png; scribbles 0 = not painted, 1 = object, 2 = background) and exit")
    demo.set_defaults(func=run)
