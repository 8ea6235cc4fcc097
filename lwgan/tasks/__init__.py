"""The commands users run (imitate, swap, view, fit, demo) and the Python API classes they share."""
