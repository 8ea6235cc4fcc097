"""What Imitator, Swapper and Viewer share: their settings, the source preparation, the frame loop and the CLI glue.

Each pipeline is built once with plain keyword arguments (Pipeline.__init__) and called with the
task's inputs; the CLI commands build them from a SynthesisConfig (the same names, with
`personalize.steps` for personalize_steps).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING
from tqdm import tqdm

from lwgan.body import BodyConfig, build_body_model
from lwgan.body.clothing import clothed_vertices
from lwgan.body.model import BodyModel
from lwgan.config import to_yaml
from lwgan.flow.input_recipes import input_recipe
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.flow.texture_warping import SourceBank, warped_frames
from lwgan.io.atomic_files import write_bytes_atomic
from lwgan.io.media import write_image
from lwgan.models import check_frame_size, check_image_size, from_pretrained
from lwgan.models.original import convert_original_generator
from lwgan.recovery.clothing import ClothingSettings
from lwgan.recovery.fitting import FitSettings
from lwgan.recovery.preview import overlay_fit
from lwgan.render import rasterize
from lwgan.tasks.people import (
    MAX_KEYPOINT_ERROR,
    MIN_PERSON_SIZE,
    ImageInput,
    PhotoPerson,
    as_image_list,
    fit_photos,
    read_background,
)
from lwgan.tasks.result import SynthesisResult
from lwgan.tasks.synthesis import build_bank, generated_frames, personalize, to_frames

logger = logging.getLogger(__name__)

MAX_SOURCES = 8


@dataclass
class PersonalizeConfig:
    steps: int = 0  # fine-tuning steps on the source photo(s) before making frames (needs checkpoint=)
    learning_rate: float = 2e-5


@dataclass
class SynthesisConfig:
    """Settings every synthesis command shares (the `lwgan imitate|swap|view` keys)."""

    output: str = MISSING  # the result: a .mp4, a .gif, a folder for PNG frames, or a .png/.jpg for one frame; config and previews go beside it
    image_size: int = 256  # side of the square frames
    checkpoint: str | None = None  # a generator export folder (of the train or personalize command), or an original released generator .pth; none: texture warping
    background: str | None = None  # a picture to put behind the person; none: the source's background, inpainted
    preserve_face: bool = True  # with a generator: keep the warped front of the face
    personalize: PersonalizeConfig = field(default_factory=PersonalizeConfig)
    batch_size: int = 8
    device: str = "cpu"
    margin: float = 1.3  # the source crop's side = margin x the person's extent
    side_by_side: bool = False  # also write <output>_side_by_side.mp4: source | reference | result
    previews: bool = True  # write <output>_fits.png: the fitted meshes over the source photos
    body: BodyConfig = field(default_factory=BodyConfig)
    fitting: FitSettings = field(default_factory=FitSettings)
    clothing: bool = True  # fit the clothed body (offsets along the normals) to the photos' person masks
    clothing_fitting: ClothingSettings = field(default_factory=ClothingSettings)
    min_person_size: float = MIN_PERSON_SIZE  # a photo whose person is smaller (longer side, photo pixels) is refused
    max_keypoint_error: float = MAX_KEYPOINT_ERROR  # a photo whose fit misses its keypoints by more (mean, part of the crop's side) is refused


class Pipeline:
    """Shared machinery; see Imitator, Swapper and Viewer."""

    def __init__(
        self,
        *,
        image_size: int = 256,
        checkpoint: str | None = None,
        background: str | None = None,
        preserve_face: bool = True,
        personalize_steps: int = 0,
        personalize_learning_rate: float = 2e-5,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        margin: float = 1.3,
        body: BodyModel | BodyConfig | None = None,
        fitting: FitSettings | None = None,
        clothing: ClothingSettings | bool = True,
        min_person_size: float = MIN_PERSON_SIZE,
        max_keypoint_error: float = MAX_KEYPOINT_ERROR,
    ) -> None:
        """
        Args:
            image_size: side of the square output frames (and of the source crops), pixels.
            checkpoint: a generator export folder, or an original released generator file (.pth);
                None makes frames by texture warping.
            background: a picture to put behind the person; None inpaints the source's background.
            preserve_face: with a generator, keep the warped front of the face.
            personalize_steps, personalize_learning_rate: fine-tuning on the source photos (with a checkpoint).
            batch_size: frames made together.
            device: torch device.
            margin: the source crop's side as a multiple of the person's extent.
            body: a BodyModel, a BodyConfig, or None for the default (Anny).
            fitting: mesh-recovery settings (lwgan.recovery.fitting.FitSettings).
            clothing: fit the clothed body to the photos (True, or ClothingSettings), or keep it naked (False).
            min_person_size: a photo whose person is smaller (the longer side, photo pixels) is refused (ValueError).
            max_keypoint_error: a photo whose fit misses the detected keypoints by more (mean, part of the crop's
                side) is refused (ValueError).
        """
        check_frame_size(image_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.image_size = image_size
        self.device = torch.device(device)
        self.body = body if isinstance(body, BodyModel) else build_body_model(body or BodyConfig())
        self.body = self.body.to(self.device)
        self.background = None if background is None else read_background(background, image_size)
        self.preserve_face = preserve_face
        self.personalize_steps = personalize_steps
        self.personalize_learning_rate = personalize_learning_rate
        self.batch_size = batch_size
        self.margin = margin
        self.fitting = fitting or FitSettings()
        self.clothing = ClothingSettings() if clothing is True else (clothing or None)
        self.min_person_size = min_person_size
        self.max_keypoint_error = max_keypoint_error
        self.seconds_by_stage: dict[str, float] = {}  # wall-clock seconds of each stage of the last calls (stage())
        self._generator_state = None
        if checkpoint:
            generator = load_generator(checkpoint, self.device)
            check_image_size(generator, image_size, f"the generator in {checkpoint}")
            if personalize_steps > 0:  # personalization changes the weights: keep the checkpoint's for the next call
                self._generator_state = {name: value.clone() for name, value in generator.state_dict().items()}
            self.generator = generator.eval().requires_grad_(False)
            logger.info("frames are made by the generator in %s", checkpoint)
        else:
            self.generator = None
            logger.info("no checkpoint given: frames are made by texture warping along the flow")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage into seconds_by_stage[name] (added up over repeats) and log it."""
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.seconds_by_stage[name] = self.seconds_by_stage.get(name, 0.0) + seconds
        logger.info("%s: %.2f s", name, seconds)

    def fit_sources(self, source: ImageInput | list[ImageInput], argument: str = "source") -> list[PhotoPerson]:
        """Detect, crop and fit 1 to MAX_SOURCES photos of one person (`argument` names them in errors)."""
        photos = as_image_list(source, argument, MAX_SOURCES)
        with self.stage(f"fit {argument} photos"):
            return fit_photos(photos, self.body, self.image_size, self.margin, self.fitting, self.clothing,
                              min_person_size=self.min_person_size, max_keypoint_error=self.max_keypoint_error)

    def prepare(self, people: list[PhotoPerson], layers: list[np.ndarray] | None = None) -> tuple[SourceBank, torch.Tensor]:
        """The source bank and the (K,) body shape (the sources' mean); personalizes the generator when asked.

        `layers`: one (H, W) integer map per person, which layer each pixel shows (build_bank), or None.
        """
        for person in people:
            if person.image.shape[:2] != (self.image_size, self.image_size):
                raise ValueError(f"{person.name} was cropped to {person.image.shape[0]} px; this pipeline makes {self.image_size} px frames")
        shape = torch.from_numpy(np.mean([person.shape for person in people], axis=0)).to(self.device)
        with torch.no_grad(), self.stage("prepare sources"):
            bank = build_bank(self.body, people, shape, self.background, layers)
        if self.generator is not None:
            if self._generator_state is not None:
                self.generator.load_state_dict(self._generator_state)  # each call starts from the checkpoint
            limit = self.generator.source_limit
            if limit is not None and len(people) > limit and input_recipe(self.generator) != "classical":
                logger.warning("the generator takes %d source(s): it uses %s", limit, ", ".join(person.name for person in people[:limit]))
            with self.stage("personalize"):
                personalize(self.generator, bank, self.body, self.personalize_steps, self.personalize_learning_rate)
        elif self.personalize_steps:
            logger.warning("personalize_steps=%d ignored: personalization fine-tunes a generator (give checkpoint=)", self.personalize_steps)
        return bank, shape

    def make_frames(self, bank: SourceBank, shape: torch.Tensor, pose: np.ndarray, camera: np.ndarray, description: str = "making frames") -> list[np.ndarray]:
        """N frames of the source person (shape (K,)) in (N, 24, 3) poses seen by (N, 3) cameras."""
        frames = []
        with self.stage("make frames"):
            for start in tqdm(range(0, len(pose), self.batch_size), desc=description, unit="batch"):
                vertices = self.target_meshes(shape, pose[start : start + self.batch_size], camera[start : start + self.batch_size], bank.offsets)
                frames += to_frames(self.render(bank, vertices))
        return frames

    def render(self, bank: SourceBank, vertices: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames in [0, 1] of (B, V, 3) target meshes in NDC, by the generator or by warping."""
        with torch.no_grad():
            if self.generator is None:
                return warped_frames(bank, vertices, self.body)
            user_background = None if self.background is None else bank.background
            return generated_frames(self.generator, bank, vertices, self.body, self.preserve_face, user_background)

    def target_meshes(self, shape: torch.Tensor, pose: np.ndarray, camera: np.ndarray, offsets: torch.Tensor) -> torch.Tensor:
        """(B, V, 3) NDC meshes with `shape` (K,) and clothing `offsets` (V,) in (B, 24, 3) poses seen by (B, 3) cameras."""
        with torch.no_grad():
            pose = torch.from_numpy(np.ascontiguousarray(pose)).to(self.device)
            return posed_vertices_ndc(self.body, pose, shape.expand(len(pose), -1), torch.from_numpy(np.ascontiguousarray(camera)).to(self.device), offsets)

    def body_masks(self, result: SynthesisResult) -> np.ndarray:
        """(N, H, W) bool: where each frame's target body (clothed as the result's) covers the picture (its rasterized mesh)."""
        masks = []
        offsets = None if result.offsets is None else torch.from_numpy(result.offsets).to(self.device)
        for start in range(0, len(result), self.batch_size):
            stop = start + self.batch_size
            vertices = self.target_meshes(torch.from_numpy(result.shape).to(self.device), result.pose[start:stop], result.camera[start:stop], offsets)
            masks.append(rasterize(vertices, self.body.faces, result.frames[0].shape[:2]).mask.cpu().numpy())
        return np.concatenate(masks)

    def fit_previews(self, people: list[PhotoPerson]) -> np.ndarray:
        """(S, S * n, 3) uint8: the fitted meshes over the n source crops, side by side."""
        panels = []
        for person in people:
            with torch.no_grad():
                vertices = self.body(torch.from_numpy(person.pose)[None].to(self.device), torch.from_numpy(person.shape)[None].to(self.device)).vertices
                vertices = clothed_vertices(vertices, self.body.faces, torch.from_numpy(person.offsets).to(self.device))[0]
            panels.append(overlay_fit(person.image, vertices.cpu(), self.body.faces.cpu(), torch.from_numpy(person.camera)))
        return np.concatenate(panels, axis=1)


def load_generator(checkpoint: str | os.PathLike, device: torch.device):
    """An export folder (the train or personalize command, save_pretrained) or an original released generator file (.pth, converted on loading)."""
    if Path(checkpoint).is_file():
        return convert_original_generator(checkpoint).to(device)
    return from_pretrained(checkpoint, device=device)


def pipeline_arguments(config: SynthesisConfig) -> dict:
    """The Pipeline keyword arguments a SynthesisConfig gives."""
    return {
        "image_size": config.image_size, "checkpoint": config.checkpoint, "background": config.background,
        "preserve_face": config.preserve_face, "personalize_steps": config.personalize.steps,
        "personalize_learning_rate": config.personalize.learning_rate, "batch_size": config.batch_size,
        "device": config.device, "margin": config.margin, "body": config.body, "fitting": config.fitting,
        "clothing": config.clothing_fitting if config.clothing else False,
        "min_person_size": config.min_person_size, "max_keypoint_error": config.max_keypoint_error,
    }


def source_list(source: Any) -> list[str]:
    """A CLI photo value (a path, or a list of paths) as a list of strings."""
    return [source] if isinstance(source, str) else [str(item) for item in source]


def beside(output: Path, suffix: str) -> Path:
    """A file next to `output` named after it: beside(Path("a/run.mp4"), "_fits.png") -> a/run_fits.png."""
    return output.with_name(output.stem + suffix) if output.suffix else output.parent / (output.name + suffix)


def write_outputs(config: SynthesisConfig, result: SynthesisResult, pipeline: Pipeline) -> dict[str, Path]:
    """Save the result, the resolved config, the fit previews and the side-by-side video as configured."""
    output = Path(config.output)
    with pipeline.stage("write outputs"):
        paths = {"result": result.save(output)}
    paths["config"] = write_bytes_atomic(beside(output, "_config.yaml"), to_yaml(config).encode())
    if config.previews:
        paths["fits"] = write_image(beside(output, "_fits.png"), pipeline.fit_previews(result.people))
    if config.side_by_side:
        paths["side_by_side"] = result.save_side_by_side(beside(output, "_side_by_side" + (output.suffix or ".mp4")))
    for name, path in paths.items():
        logger.info("wrote %s: %s", name, path)
    return paths
