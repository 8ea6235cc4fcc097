"""Mesh recovery: person detection, body and clothing fitting, video tracking, pose and keypoint files."""
