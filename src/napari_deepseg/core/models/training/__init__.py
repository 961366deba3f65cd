"""Training of the project's models: datasets, checkpoints, the epoch loop, a model registry.

A trainable model registers a factory under a name; ``napari-deepseg train NAME
DATASET -o DIR`` and :func:`train_model` then train it with the shared loop::

    @register_trainable("my-model")
    class MyModel(Trainable):
        ...

The factory takes keyword options (``backbone=``, ``image_size=``, ``device=``;
unknown ones are dropped by the command line by signature).
"""

from __future__ import annotations

from collections.abc import Callable

from .checkpoint import load_checkpoint, save_checkpoint
from .data import IGNORE, ArraySample, Sample, find_samples, load_sample, split_samples
from .loop import EpochReport, Trainable, TrainOptions, TrainResult, fit

_MODELS: dict[str, Callable[..., Trainable]] = {}


def register_trainable(name: str):
    """Class decorator registering a :class:`Trainable` factory under ``name``."""

    def wrap(factory):
        factory.name = name
        _MODELS[name] = factory
        return factory

    return wrap


def _load_builtin() -> None:
    """Import the modules whose trainable models register themselves."""
    from . import (
        pointclip,  # noqa: F401  (registers "pointclip")
        segmentation,  # noqa: F401  (registers unet, resnet34-unet, clip-seg, autoencoder)
    )


def available_trainables() -> list:
    """Names of the registered trainable models.

    Examples
    --------
    >>> "pointclip" in available_trainables()
    True
    """
    _load_builtin()
    return sorted(_MODELS)


def get_trainable(name: str, **params) -> Trainable:
    """A new :class:`Trainable` ``name`` built with ``params``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(_MODELS))}")
    return _MODELS[name](**params)


def trainable_factory(name: str):
    """The registered factory (class) of ``name``, e.g. to inspect its signature."""
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


__all__ = [
    "IGNORE", "ArraySample", "EpochReport", "Sample", "TrainOptions", "TrainResult", "Trainable", "available_trainables",
    "find_samples", "fit", "get_trainable", "load_checkpoint", "load_sample", "register_trainable",
    "save_checkpoint", "split_samples", "trainable_factory",
]
