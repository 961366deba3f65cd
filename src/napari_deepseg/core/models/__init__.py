"""Networks that run on whole images: proposals, saliency, inference, prediction, training.

What lives here
---------------
``proposals``
    DeepLabV3 automatic proposals (and their refinement by the scribble cut).
``saliency``
    VGG16 gradient saliency maps.
``inference``
    Lean whole-network inference helpers (tiles, blending, batch-norm folding).
``predict``
    :class:`~napari_deepseg.core.models.predict.SegmentationModel`: a trained
    checkpoint applied to new images.
``robustness``
    Scores of a trained model under perturbations.
``training``
    Data, networks, augmentation and the training loop (UNet, ResNet34-UNet,
    CLIP-based, PointCLIP).

What it may import
------------------
:mod:`napari_deepseg.core.features`, :mod:`napari_deepseg.core.io`,
:mod:`napari_deepseg.core.utils`, :mod:`napari_deepseg.core.evaluation` (metrics,
the click protocol for PointCLIP training) and, for refining proposals,
:mod:`napari_deepseg.core.cut`.
"""
