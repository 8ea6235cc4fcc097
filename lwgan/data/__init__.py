"""Datasets: the iPER-format video dataset and the synthetic dataset maker."""
