"""Honest numbers: metrics, evaluation tables and the benchmark protocols.

What lives here
---------------
``metrics``
    IoU, Dice, pixel accuracy, precision, recall, F1, MSE (binary and per class).
``folders``
    Score tables of label images and folders of masks, error overlays, CSV/JSON.
``benchmark``
    The number-of-clicks, box and scribble protocols over the public datasets.

What it may import
------------------
:mod:`napari_deepseg.core.io`, :mod:`napari_deepseg.core.utils` and the click
interface and box prompt of :mod:`napari_deepseg.core.prompts` (``prompts.base``, ``prompts.box``).
"""
