"""What every command shares: the program name, the one-line error type and parser."""

from __future__ import annotations

import argparse

PROG = "napari-deepseg"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_backbone_options(parser, default: str = "classic") -> None:
    """``--features``, ``--weights``, ``--layers``, ``--max-side``, ``--rgb-channels``, ``--device`` on ``parser``."""
    from ..core import available_backbones

    parser.add_argument("--features", default=default, choices=available_backbones(), help="feature backbone")
    parser.add_argument("--weights", default=None,
                        help="pretrained backbones: resnet50 weights file, or a CLIP model id / local folder")
    parser.add_argument("--layers", default=None, help="resnet50 layers, e.g. layer4 or layer2,layer3")
    parser.add_argument("--max-side", type=int, default=None,
                        help="resnet50: shrink images whose longer side exceeds this (default 1024; 0 = never)")
    parser.add_argument("--rgb-channels", type=int, nargs=3, default=None, metavar=("R", "G", "B"),
                        help="pretrained backbones: the image channels read as red, green and blue "
                             "(default the first three), e.g. 3 0 1 for near-infrared, red, green")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))


def backbone_params(args) -> dict:
    """Keyword parameters for the chosen backbone from the parsed options."""
    params = {}
    if args.features == "resnet50":
        params.update(device=args.device, weights=args.weights)
        if args.layers:
            params["layers"] = args.layers
        if args.max_side is not None:
            params["max_side"] = args.max_side
    elif args.features == "clip":
        params["device"] = args.device
        if args.weights:
            params["weights"] = args.weights  # a CLIP model id or a local folder
    elif args.features == "saliency":
        params.update(device=args.device, weights=args.weights)  # the VGG16 checkpoint
    elif args.weights:
        raise CLIError(f"--weights is only used by pretrained backbones, not by '{args.features}'")
    rgb = getattr(args, "rgb_channels", None)
    if rgb is not None:
        if args.features not in ("resnet50", "clip", "saliency"):
            raise CLIError(f"--rgb-channels is only used by pretrained backbones (resnet50, clip, saliency), "
                           f"not by '{args.features}', which reads every channel")
        params["rgb_channels"] = tuple(rgb)
    return params
