"""Command line ``napari-deepseg``: thin faces of the core, one module per sub-command.

The sub-commands live in :mod:`napari_deepseg.commands`. Errors are reported as
one line on stderr with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS
from .commands._common import PROG, CLIError, OneLineParser

__all__ = ["CLIError", "OneLineParser", "PROG", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-deepseg`` command."""
    parser = OneLineParser(prog=PROG, description="Interactive segmentation with deep features and graph cuts.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_parser(sub)
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
