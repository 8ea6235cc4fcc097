"""Datasets: the iPER-format video dataset, preprocessing of raw videos into it, and the synthetic dataset maker."""
