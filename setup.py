"""Packaging beyond pyproject.toml: the top-level conf/ folder (Hydra's YAML) installs as the package lwgan.conf.

Hydra finds it as pkg://lwgan.conf in wheels and editable installs alike (lwgan.config).
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["lwgan", "lwgan.*"]), "lwgan.conf"], package_dir={"lwgan.conf": "conf"})
