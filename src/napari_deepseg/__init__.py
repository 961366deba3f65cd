"""napari-deepseg: annotation-assisted segmentation with deep features and graph cuts."""

__version__ = "0.1.0"

__all__ = ["__version__"]
