"""What every command shares: the program name, the one-line error type and parser."""

from __future__ import annotations

import argparse

PROG = "napari-deepseg"


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` lines end in ``(default: X)`` where an option has a default worth saying.

    Like :class:`argparse.ArgumentDefaultsHelpFormatter`, without ``(default: None)`` or
    ``(default: False)`` noise, and not where the help text already gives the value.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS or default == []
                or text is argparse.SUPPRESS or "%(default)" in text or not action.option_strings):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        if f"default {shown}" in text or f"default: {shown}" in text:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2).

    A sub-command's unknown option is reported by the sub-command
    (``see napari-deepseg segment --help``), not by the top-level parser; every
    parser's ``--help`` shows the defaults (:class:`DefaultsHelpFormatter`).
    """

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._owner_of(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _owner_of(self, parsed) -> argparse.ArgumentParser:
        """The sub-command's parser that ``parsed`` went through (``self`` when there is none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(chosen, OneLineParser):
                    return chosen._owner_of(parsed)
        return self


def add_backbone_options(parser, default: str = "classic") -> None:
    """``--features``, ``--weights``, ``--layers``, ``--max-side``, ``--rgb-channels``, ``--device`` on ``parser``."""
    from ..core import available_backbones

    parser.add_argument("--features", default=default, choices=available_backbones(), help="feature backbone")
    parser.add_argument("--weights", default=None,
                        help="pretrained backbones: resnet50 weights file, or a CLIP model id / local folder (default: "
                             "torchvision's ImageNet checkpoint; openai/clip-vit-base-patch32)")
    parser.add_argument("--layers", default=None, help="resnet50 layers, e.g. layer4 or layer2,layer3 (default: layer2,layer3)")
    parser.add_argument("--max-side", type=int, default=None,
                        help="resnet50: shrink images whose longer side exceeds this (default 1024; 0 = never)")
    parser.add_argument("--rgb-channels", type=int, nargs=3, default=None, metavar=("R", "G", "B"),
                        help="pretrained backbones: the image channels read as red, green and blue "
                             "(default the first three), e.g. 3 0 1 for near-infrared, red, green")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="pretrained backbones: torch device (auto = cuda or mps when present, else cpu)")


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
