"""lwgan's Hydra config groups (YAML values); installed as the package lwgan.conf, found as pkg://lwgan.conf."""
