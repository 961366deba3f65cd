"""The scribble cut: from an image and strokes to a label image.

What lives here
---------------
``session``
    :class:`SegmentationSession` (the per-image cache, ``set_image``, ``segment``
    dispatch) and :func:`segment_image`.
``image``
    :class:`ImageFeatures`, what one image (or one pyramid level) keeps, and the
    only module that fills it: its next pyramid level, colour mixture, n-links,
    σ and oversampling, the cached graph and star steps of the last strokes,
    the last coarse-to-fine cut.
``energy``
    The default preset's energy on one level: image-wide colour mixture or deep
    linear model, 8-neighbour contrast n-links, star convexity, GrabCut refits.
``seed``
    The ``seed`` preset (the original notebook's energy).
``pyramid``
    The default preset's two-label cut coarse-to-fine: the levels it uses, the
    coarsest level's cut with its refits and found star centres, the local update.
``graphcut``
    The graph-cut energy's terms: contrast n-links, t-links, star-convexity edges.
``maxflow``
    Every max-flow solver: the incremental grid cut, alpha-expansion, and the
    band graph's BK and HPF back-ends.
``blocks``
    The 2 x 2 pyramid of a 2-D image: block reductions, block seeds, upsampling.
``bands``
    The one band solver (any dimension: 2-D bands, 3-D volumes) and its
    growth; band masks; edge weights read or computed for the band's pixels;
    :func:`~napari_deepseg.core.cut.bands.refine_levels`, the way down of every
    coarse-to-fine cut (2-D scribbles, ``points-graphcut`` clicks, volumes).
``star_steps``
    Star-convexity steps asked for a band's pixels (k-d tree or table).
``palette``, ``appearance``
    Colour palettes of images; appearance models of the classes.
``volume``
    :class:`~napari_deepseg.core.cut.volume.VolumeSession`, the 3-D / per-plane cut.
``service``
    The cut as a service (what the Scribble widget's workers run, usable from a
    script): request :class:`~napari_deepseg.core.cut.service.Options`, a pool of
    the most recently used sessions, a child process for large planes.

What it may import
------------------
:mod:`napari_deepseg.core.features`, :mod:`napari_deepseg.core.io` and
:mod:`napari_deepseg.core.utils`; never the prompts, models or evaluation.
"""
