"""Motion imitation: the source person performing a reference's moves (`Imitator`, `lwgan imitate`)."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING

from lwgan.body.camera import yaw_of
from lwgan.io.media import check_output, read_video
from lwgan.tasks.people import ImageInput, PhotoPerson
from lwgan.tasks.pipeline import (
    Pipeline,
    SynthesisConfig,
    beside,
    pipeline_arguments,
    source_list,
    write_outputs,
)
from lwgan.tasks.references import (
    ReferenceMotion,
    check_camera_strategy,
    check_reference,
    face_heading,
    load_reference,
    smooth_reference,
    target_cameras,
)
from lwgan.tasks.result import SynthesisResult

logger = logging.getLogger(__name__)


class Imitator(Pipeline):
    """Make a video of the source person performing the reference's moves.

    Example:
        result = Imitator()(source="me.jpg", reference="dance.mp4")
        result.save("me_dancing.mp4")

    Construction takes Pipeline's keyword arguments (image_size, checkpoint, background, ...).
    """

    def __call__(
        self,
        source: ImageInput | list[ImageInput],
        reference: str | os.PathLike,
        camera: str = "smooth",
        fps: float = 30.0,
        max_frames: int | None = None,
        smooth_poses: bool = True,
        pose_cutoff_hz: float = 4.0,
        camera_cutoff_hz: float = 2.0,
        audio: bool = True,
        work_folder: str | os.PathLike | None = None,
    ) -> SynthesisResult:
        """
        Args:
            source: 1 to 8 photos of one person (paths or (H, W, 3) uint8 arrays).
            reference: a video, a folder of frames, a BVH file, an iPER pose_shape.pkl or an npz of SMPL poses.
            camera: "smooth", "source" or "copy" (lwgan.tasks.references.CAMERA_STRATEGIES).
            fps: frame rate of folders, pkl and npz files without one, and BVH resampling.
            max_frames: use at most this many reference frames.
            smooth_poses: low-pass the reference poses (zero phase) at pose_cutoff_hz.
            camera_cutoff_hz: low-pass of the "smooth" cameras.
            audio: carry a reference video's audio into mp4 outputs.
            work_folder: where a reference video's fitting goes (kept, so a rerun reuses it);
                a temporary folder when None.
        Returns:
            SynthesisResult with one frame per reference frame.
        """
        check_camera_strategy(camera)
        check_reference(reference)  # before the source fit, so a wrong path fails at once
        people = self.fit_sources(source)
        keep = contextlib.nullcontext(work_folder) if work_folder is not None else tempfile.TemporaryDirectory(prefix="lwgan_reference_")
        with keep as folder:
            with self.stage("load reference"):
                motion = load_reference(reference, self.body, Path(folder), self.image_size, fps, self.fitting, max_frames)
            return self.imitate_motion(people, motion, camera, max_frames, smooth_poses, pose_cutoff_hz, camera_cutoff_hz, audio)

    def imitate_motion(self, people: list[PhotoPerson], motion: ReferenceMotion, camera: str = "smooth", max_frames: int | None = None,
                       smooth_poses: bool = True, pose_cutoff_hz: float = 4.0, camera_cutoff_hz: float = 2.0, audio: bool = True) -> SynthesisResult:
        """__call__ after fitting the sources and loading the reference (same arguments)."""
        motion = motion.cut(max_frames)
        if motion.camera is None:
            motion = face_heading(motion, yaw_of(people[0].pose))
        if smooth_poses:
            motion = smooth_reference(motion, pose_cutoff_hz)
        bank, shape = self.prepare(people)
        cameras = target_cameras(camera, people[0].camera, motion, camera_cutoff_hz)
        frames = self.make_frames(bank, shape, motion.pose, cameras, description="imitating")
        references = reference_pictures(motion)
        return SynthesisResult(frames, motion.fps, motion.pose, shape.cpu().numpy(), cameras,
                               sources=[person.image for person in people], references=references,
                               audio_from=motion.video if audio else None, people=people, offsets=bank.offsets.cpu().numpy())


def reference_pictures(motion: ReferenceMotion) -> list[np.ndarray]:
    """What side-by-side videos show of the reference: its fitted mesh over its crops, else the crops, else nothing (motion files)."""
    if motion.preview is not None:
        return list(read_video(motion.preview)[0][: len(motion)])
    return [motion.frame(index) for index in range(len(motion))] if motion.frames_folder is not None else []


@dataclass
class ImitateConfig(SynthesisConfig):
    source: Any = MISSING  # a photo, or a list of 1-8 photos of one person: source=a.jpg or source=[a.jpg,b.jpg]
    reference: str = MISSING  # a video, a folder of frames, a .bvh, an iPER pose_shape.pkl or an .npz of SMPL poses
    camera: str = "smooth"  # smooth | source | copy
    fps: float = 30.0  # for folders, pkl/npz files and BVH resampling
    max_frames: int | None = None
    smooth_poses: bool = True
    pose_cutoff_hz: float = 4.0
    camera_cutoff_hz: float = 2.0
    audio: bool = True  # carry the reference video's audio into the mp4


def run(config: ImitateConfig) -> dict[str, Path]:
    check_output(config.output)
    imitator = Imitator(**pipeline_arguments(config))
    result = imitator(source=source_list(config.source), reference=config.reference, camera=config.camera, fps=config.fps,
                      max_frames=config.max_frames, smooth_poses=config.smooth_poses, pose_cutoff_hz=config.pose_cutoff_hz,
                      camera_cutoff_hz=config.camera_cutoff_hz, audio=config.audio,
                      work_folder=beside(Path(config.output), "_reference"))
    return write_outputs(config, result, imitator)

