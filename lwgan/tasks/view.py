"""Novel-view synthesis: the source person seen from other angles (`Viewer`, `lwgan view`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING

from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.media import check_output
from lwgan.tasks.people import ImageInput
from lwgan.tasks.pipeline import (
    Pipeline,
    SynthesisConfig,
    pipeline_arguments,
    source_list,
    write_outputs,
)
from lwgan.tasks.result import SynthesisResult

logger = logging.getLogger(__name__)


def view_angles(yaw: list[float] | None, pitch: list[float] | float, turn: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N,) yaw and (N,) pitch angles in degrees: the given lists, or `turn` steps of a 360 degree turn.

    With neither yaw nor turn: 8 views at 45 degree steps. A single pitch applies to every view.
    """
    if turn is not None and yaw is not None:
        raise ValueError("give either yaw=[...] or turn=N, not both")
    if turn is not None:
        if turn < 1:
            raise ValueError(f"turn must be a positive number of frames, got {turn}")
        yaw = list(np.arange(turn) * 360.0 / turn)
    yaws = np.asarray([0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0] if yaw is None else list(yaw), np.float64)
    pitches = np.asarray(pitch if isinstance(pitch, (list, tuple)) else [pitch] * len(yaws), np.float64)
    if pitches.shape != yaws.shape:
        raise ValueError(f"pitch must be one angle or one per view ({len(yaws)}), got {len(pitches)}")
    return yaws, pitches


def turned_poses(pose: np.ndarray, yaw_degrees: np.ndarray, pitch_degrees: np.ndarray) -> np.ndarray:
    """(24, 3) pose turned by each (yaw, pitch) about the camera's vertical and horizontal axes -> (N, 24, 3).

    The body turns about its pelvis (the global orientation pivot), so it stays in place; a positive
    yaw turns the body's front towards the image's right.
    """
    yaw = torch.from_numpy(np.radians(yaw_degrees))
    pitch = torch.from_numpy(np.radians(pitch_degrees))
    zeros = torch.zeros_like(yaw)
    turn = axis_angle_to_matrix(torch.stack([zeros, -yaw, zeros], dim=-1)) @ axis_angle_to_matrix(torch.stack([pitch, zeros, zeros], dim=-1))
    global_orientation = axis_angle_to_matrix(torch.from_numpy(pose[0]).double())
    poses = np.repeat(pose[None], len(yaw_degrees), axis=0).copy()
    poses[:, 0] = matrix_to_axis_angle(turn @ global_orientation).numpy()
    return poses.astype(np.float32)


class Viewer(Pipeline):
    """Render the source person from other angles.

    Example:
        Viewer()(source="me.jpg", turn=36).save("turn.gif")
    """

    def __call__(
        self,
        source: ImageInput | list[ImageInput],
        yaw: list[float] | None = None,
        pitch: list[float] | float = 0.0,
        turn: int | None = None,
        fps: float = 12.0,
    ) -> SynthesisResult:
        """
        Args:
            source: 1 to 8 photos of one person; the first one's pose is shown.
            yaw: view angles in degrees about the vertical axis (0 = the photo's view).
            pitch: degrees about the horizontal axis, one for all views or one per view.
            turn: instead of yaw, this many views over a full turn.
            fps: frame rate of saved videos.
        Returns:
            SynthesisResult with one frame per view.
        """
        yaws, pitches = view_angles(yaw, pitch, turn)
        people = self.fit_sources(source)
        return self.view_people(people, yaws, pitches, fps)

    def view_people(self, people, yaws: np.ndarray, pitches: np.ndarray, fps: float = 12.0) -> SynthesisResult:
        """__call__ after fitting the sources, with the angles from view_angles()."""
        bank, shape = self.prepare(people)
        pose = turned_poses(people[0].pose, yaws, pitches)
        camera = np.repeat(people[0].camera[None], len(pose), axis=0)
        frames = self.make_frames(bank, shape, pose, camera, description="rendering views")
        return SynthesisResult(frames, fps, pose, shape.cpu().numpy(), camera, sources=[person.image for person in people], people=people,
                               offsets=bank.offsets.cpu().numpy())


@dataclass
class ViewConfig(SynthesisConfig):
    source: Any = MISSING  # a photo, or a list of photos of one person
    yaw: list[float] | None = None  # degrees; default 8 views at 45 degree steps
    pitch: list[float] = field(default_factory=lambda: [0.0])  # one angle for all views, or one per view
    turn: int | None = None  # instead of yaw: this many views over a full turn
    fps: float = 12.0


def run(config: ViewConfig) -> dict[str, Path]:
    check_output(config.output)
    viewer = Viewer(**pipeline_arguments(config))
    pitch = list(config.pitch) if len(config.pitch) > 1 else float(config.pitch[0])
    result = viewer(source=source_list(config.source), yaw=config.yaw, pitch=pitch, turn=config.turn, fps=config.fps)
    return write_outputs(config, result, viewer)
