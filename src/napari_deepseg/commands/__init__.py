"""The sub-commands of ``napari-deepseg``, one module each.

Every module has ``add_parser(subparsers)``, which adds its sub-parser and sets
``func`` to the function that runs it (returning the exit status). Imports of the
core happen inside those functions, so ``napari-deepseg --help`` stays fast.
"""

#: modules of :mod:`napari_deepseg.commands`, in the order ``--help`` lists them
COMMANDS = ("segment", "precompute", "demo", "benchmark", "propose", "saliency", "evaluate", "train", "predict",
            "robustness", "dataset")
