"""Qt dock widgets of napari-deepseg: thin faces of :mod:`napari_deepseg.core`."""

from .scribble_widget import ScribbleSegmentationWidget

__all__ = ["ScribbleSegmentationWidget"]
