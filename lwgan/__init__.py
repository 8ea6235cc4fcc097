"""lwgan: 3D-mesh-based human image synthesis in the style of Liquid Warping GAN."""

__version__ = "0.1.0"
