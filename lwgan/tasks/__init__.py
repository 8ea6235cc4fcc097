"""The commands users run (imitate, swap, view, fit, preprocess, demo) and the Python API classes they share."""
