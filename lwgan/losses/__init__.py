"""Training losses: reconstruction, VGG19 perceptual, face identity, LSGAN and mask terms, combined per network."""

from lwgan.losses.combined import DiscriminatorLoss, GeneratorLoss
from lwgan.losses.sphereface import (
    SphereFace20,
    face_crop,
    head_boxes_from_keypoints,
    load_sphereface,
)
from lwgan.losses.vgg import VGG19Features, load_vgg19_features

__all__ = [
    "DiscriminatorLoss", "GeneratorLoss", "SphereFace20", "VGG19Features", "face_crop", "head_boxes_from_keypoints",
    "load_sphereface", "load_vgg19_features",
]
