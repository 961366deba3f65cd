"""Reading and writing: files, lazy (dask / zarr) views, the feature cache, weights, pictures.

What lives here
---------------
``files``
    ``read_image``, ``read_labels``, ``write_labels``.
``lazy``
    :class:`~napari_deepseg.core.io.lazy.LazyImage` and region-by-region readers
    of dask and zarr arrays.
``feature_cache``
    The zarr store of precomputed features.
``weights``
    Locating, downloading and loading pretrained weights (offline override folder).
``visualize``
    The demo figure (image, scribbles, result).

What it may import
------------------
:mod:`napari_deepseg.core.utils`, and :class:`~napari_deepseg.core.features.base.FeatureMap` (what the
feature cache stores).
"""
