"""Plumbing every other part of the core uses: validation, progress and cancel, memory, threads.

What lives here
---------------
``validation``
    Checks at the core's boundary (images, scribbles, numbers) with one-line messages.
``progress``
    Progress callbacks, :class:`~napari_deepseg.core.utils.progress.CancelToken`.
``memory``
    The memory guard (:class:`~napari_deepseg.core.utils.memory.ImageTooLargeError`).
``threads``
    Limiting BLAS threads for small fits.

What it may import
------------------
Nothing else of :mod:`napari_deepseg.core`.
"""
