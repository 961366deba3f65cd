"""Annotating a whole folder: statuses, saved states and records, prefetching, replay.

What lives here
---------------
``folder``
    :class:`~napari_deepseg.core.dataset.folder.DatasetFolder`: the images of a
    folder, the output folder (masks, records, ``dataset.json``), the status of
    each image, loading and saving each image's state atomically.
``record``
    :class:`~napari_deepseg.core.dataset.record.ImageState` and
    :class:`~napari_deepseg.core.dataset.record.Step`: a mask and how it was
    made (prompts, engine, plugin version), and their JSON form.
``lock``, ``history``
    One writer per output folder; previous versions of every mask.
``prefetch``
    :class:`~napari_deepseg.core.dataset.prefetch.Prefetcher`: which images to
    prepare next and the prepared sessions kept (current and two neighbours).
``replay``
    Re-creating masks from their records with the current engines.

What it may import
------------------
:mod:`napari_deepseg.core.cut`, :mod:`napari_deepseg.core.prompts`,
:mod:`napari_deepseg.core.io`, :mod:`napari_deepseg.core.utils`.
"""

from .folder import STATUSES, DatasetFolder, Item, ReadOnlyError, UnreadableImage
from .record import ImageState, Step, click_engine, scribble_engine

__all__ = ["STATUSES", "DatasetFolder", "ImageState", "Item", "ReadOnlyError", "Step", "UnreadableImage",
           "click_engine", "scribble_engine"]
