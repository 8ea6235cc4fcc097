"""Novel-view synthesis: the source person seen from other angles (`Viewer`, `lwgan view`)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING

from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.io.media import check_output
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


def vertical_tilt(orientation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) image-oriented global orientations -> (...) radians the body's vertical leans away from the camera.

    The body's vertical is the line of its root's up axis (y of the body frame). The tilt is its
    angle out of the image plane, about the camera's horizontal axis, in [-pi/2, pi/2]: positive
    when its upper end in the image is farther from the camera than the pelvis, negative when it
    is nearer (a camera looking down). Rotating by it about the camera's x axis puts the vertical
    into the image plane without standing a body upside down on its feet.
    """
    up = orientation[..., :, 1]  # in camera axes: x right, y down, z away
    tilt = torch.atan2(up[..., 2], -up[..., 1])
    return tilt - math.pi * torch.round(tilt / math.pi)


def about_camera_axis(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """(N,) radians -> (N, 3, 3) rotations about the camera's x (axis 0) or y (axis 1) axis."""
    axis_angle = torch.zeros(*angle.shape, 3, dtype=angle.dtype)
    axis_angle[..., axis] = angle
    return axis_angle_to_matrix(axis_angle)


def turned_poses(pose: np.ndarray, yaw_degrees: np.ndarray, pitch_degrees: np.ndarray) -> np.ndarray:
    """(24, 3) pose seen from (N,) yaw and (N,) pitch angles (degrees) -> (N, 24, 3).

    The camera turns about the body's vertical axis through the pelvis: the axis about which the
    global orientation turns the body (so the body stays in place), lying in the plane of the
    image's vertical and the line of sight, tilted towards the camera as much as the body's
    vertical is in the photo (vertical_tilt; the photo's camera pitch as the fit found it). It
    projects onto the vertical image line through the pelvis, so the body stands as upright in
    every view as in the photo, and yaw 0 is the photo's own view. (Turning about the camera's
    vertical instead shows that tilt, invisible in a frontal photo, as a lean in the side views.)

    A positive yaw turns the body's front towards the image's right. Then a positive pitch raises
    the camera by that many degrees to look down at the body (its top tilts towards the camera).
    """
    yaw = torch.from_numpy(np.radians(np.asarray(yaw_degrees, np.float64)))
    pitch = torch.from_numpy(np.radians(np.asarray(pitch_degrees, np.float64)))
    orientation = axis_angle_to_matrix(torch.from_numpy(pose[0]).double())
    level = about_camera_axis(0, vertical_tilt(orientation).expand(len(yaw)))  # the body's vertical into the image plane
    turn = about_camera_axis(0, pitch) @ level.transpose(-1, -2) @ about_camera_axis(1, -yaw) @ level
    poses = np.repeat(pose[None], len(yaw), axis=0).copy()
    poses[:, 0] = matrix_to_axis_angle(turn @ orientation).numpy()
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
            yaw: view angles in degrees about the body's vertical axis through the pelvis (0 = the
                photo's view; positive turns the front towards the image's right).
            pitch: degrees the camera then rises to look down at the body (negative: up from
                below), one for all views or one per view.
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
    pitch: list[float] = field(default_factory=lambda: [0.0])  # degrees the camera rises to look down, one for all views or one per view
    turn: int | None = None  # instead of yaw: this many views over a full turn
    fps: float = 12.0


def run(config: ViewConfig) -> dict[str, Path]:
    pitch = list(config.pitch) if len(config.pitch) > 1 else float(config.pitch[0])
    yaws, pitches = view_angles(config.yaw, pitch, config.turn)
    check_output(config.output, frame_count=len(yaws))  # one view can go to a .png/.jpg, several cannot
    viewer = Viewer(**pipeline_arguments(config))
    result = viewer.view_people(viewer.fit_sources(source_list(config.source)), yaws, pitches, config.fps)
    return write_outputs(config, result, viewer)
