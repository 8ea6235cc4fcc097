"""Synthetic people: rendered person images with known ground truth (pose, shape, camera, joints, observation), for fitting tests and tools."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lwgan.body.camera import project
from lwgan.body.clothing import vertex_normals
from lwgan.body.model import BodyModel
from lwgan.body.skeleton import BODY_KEYPOINT_NAMES
from lwgan.checks import check_image_size, check_shape
from lwgan.recovery.observation import (
    PersonObservation,
    SquareFrame,
    square_to_image_ndc,
)
from lwgan.render.interpolate import interpolate_vertex_attributes
from lwgan.render.procedural import background_image, clothing_texture
from lwgan.render.rasterize import rasterize
from lwgan.render.texture import rasterize_uv_atlas, render_texture

_HIPS = [BODY_KEYPOINT_NAMES.index("left_hip"), BODY_KEYPOINT_NAMES.index("right_hip")]
_LIGHT = (0.3, -0.5, -1.0)
"""Direction towards the light in camera axes (x right, y down, z away): from the camera, a little above and to the right."""


@dataclass(frozen=True)
class SyntheticPerson:
    """A rendered person and the truth behind it (numpy float32 unless said otherwise).

    image: (H, W, 3) uint8 RGB, the dressed body (procedural clothing, a painted face, Lambert
        shading) over a procedural background.
    pose: (24, 3) SMPL axis-angle in the image orientation (as FitResult.pose).
    shape: (shape_dim,); camera: (3,) weak perspective (s, tx, ty) in the image's square frame.
    joints_3d: (24, 3) metres, the posed body's SMPL joints in the camera axes of
        lwgan.body.camera (x right, y down, z depth), before the camera's translation.
    keypoints_2d: (23, 2) the body's projected keypoints, continuous image pixels (x, y).
    observation: what a perfect detector would report: keypoints_2d with confidence 1 (0 for
        keypoints outside the image), the exact mask of the rasterizer, world landmarks = the
        true 3D keypoints centred between the hips in camera axes, the mask's bounding box.
    """

    image: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    camera: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    observation: PersonObservation


def render_synthetic_person(
    body: BodyModel,
    pose: torch.Tensor,
    camera: torch.Tensor,
    image_size: int | tuple[int, int] = 256,
    shape: torch.Tensor | None = None,
    seed: int = 0,
    texture_size: int = 256,
) -> SyntheticPerson:
    """Render a dressed body (lwgan.render.procedural, plus paint_face and Lambert shading) in `pose` at `camera` over a background.

    Args:
        body: the body model.
        pose: (24, 3) SMPL axis-angle in the IMAGE orientation, the upright flip included (as
            FitResult.pose; lwgan.body.camera.orient_for_image turns a y-up motion-capture pose into one).
        camera: (3,) weak perspective (s, tx, ty) in the square frame of the image
            (lwgan.recovery.observation.SquareFrame).
        image_size: S or (H, W).
        shape: (shape_dim,) body shape, body.default_shape() when None.
        seed: picks the clothing and the background.
        texture_size: side of the clothing texture in texels.
    Returns:
        SyntheticPerson.
    """
    height, width = check_image_size("image_size", image_size)
    check_shape("pose", pose, (24, 3))
    check_shape("camera", camera, (3,))
    device = body.faces.device
    pose = pose.to(device=device, dtype=torch.float32)
    camera = camera.to(device=device, dtype=torch.float32)
    shape = body.default_shape(1)[0] if shape is None else shape.to(device=device, dtype=torch.float32)
    check_shape("shape", shape, (body.shape_dim,))
    frame = SquareFrame.around((height, width))
    with torch.no_grad():
        posed = body(pose[None], shape[None])
        rest = body(torch.zeros_like(pose)[None], shape[None])
        texture = clothing_texture(body.uv, body.face_uv, body.faces, body.face_part, rest.vertices[0], texture_size, seed)
        texture = paint_face(texture, body, rest.vertices[0], rest.keypoints[0])
        background = background_image(height, width, seed=seed).to(device)
        vertices_ndc = square_to_image_ndc(project(posed.vertices, camera[None]), frame, (height, width))
        fragments = rasterize(vertices_ndc, body.faces, (height, width))
        colour = render_texture(fragments, body.uv, body.face_uv, texture[None].to(device))
        shade = interpolate_vertex_attributes(fragments, body.faces, _lambert(posed.vertices[0], body.faces)[:, None])
        mask = fragments.mask[:, None].to(colour.dtype)
        image = (colour * shade.permute(0, 3, 1, 2) * mask + background[None] * (1 - mask))[0]
        keypoints_ndc = project(posed.keypoints, camera[None])[0, :, :2]
    image = (image.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    mask = fragments.mask[0].cpu().numpy().astype(np.float32)
    keypoints_2d = frame.ndc_to_pixels(keypoints_ndc.cpu().numpy().astype(np.float64)).astype(np.float32)
    inside = (keypoints_2d[:, 0] >= 0) & (keypoints_2d[:, 0] < width) & (keypoints_2d[:, 1] >= 0) & (keypoints_2d[:, 1] < height)
    keypoints = np.concatenate([keypoints_2d, inside[:, None].astype(np.float32)], axis=1)
    keypoints_3d = posed.keypoints[0].cpu().numpy()
    landmarks = (keypoints_3d - keypoints_3d[_HIPS].mean(axis=0)).astype(np.float32)
    observation = PersonObservation(
        image_size=(height, width),
        keypoints=keypoints,
        world_landmarks=landmarks,
        mask=mask,
        box=_mask_box(mask, keypoints_2d),
    )
    return SyntheticPerson(
        image=image,
        pose=pose.cpu().numpy(),
        shape=shape.cpu().numpy(),
        camera=camera.cpu().numpy(),
        joints_3d=posed.joints[0].cpu().numpy(),
        keypoints_2d=keypoints_2d,
        observation=observation,
    )


def paint_face(texture: torch.Tensor, body: BodyModel, rest_vertices: torch.Tensor, rest_keypoints: torch.Tensor) -> torch.Tensor:
    """Paint eyes, eyebrows and a mouth onto a (3, S, S) clothing texture, so detectors can tell the face's side.

    clothing_texture leaves the face plain skin, which makes a person facing the camera look like
    one seen in profile to BlazePose. Features sit at the rest body's eye and nose keypoints
    ((V, 3) rest_vertices and (23, 3) rest_keypoints, T-pose facing +z), on front-face faces only.
    """
    size = texture.shape[-1]
    atlas = rasterize_uv_atlas(body.uv, body.face_uv, size)
    position = interpolate_vertex_attributes(atlas, body.faces, rest_vertices.float())[0]  # (S, S, 3)
    face_index = atlas.face_index[0]
    on_face = (face_index >= 0) & body.face_masks["front_face"][face_index.clamp_min(0)]
    x, y = position[..., 0], position[..., 1]
    nose = rest_keypoints[BODY_KEYPOINT_NAMES.index("nose")]
    eyes = rest_keypoints[[BODY_KEYPOINT_NAMES.index("left_eye"), BODY_KEYPOINT_NAMES.index("right_eye")]]
    eye_height = float(eyes[:, 1].mean())
    spacing = float(eyes[:, 0].max() - eyes[:, 0].min())

    def ellipse(center_x: float, center_y: float, half_width: float, half_height: float) -> torch.Tensor:
        return on_face & (((x - center_x) / half_width) ** 2 + ((y - center_y) / half_height) ** 2 <= 1.0)

    painted = texture.clone()

    def paint(where: torch.Tensor, colour: tuple[float, float, float]) -> None:
        painted[:] = torch.where(where[None], painted.new_tensor(colour).view(3, 1, 1), painted)

    for eye_x in eyes[:, 0].tolist():
        paint(ellipse(eye_x, eye_height + 0.28 * spacing, 0.3 * spacing, 0.07 * spacing), (0.15, 0.1, 0.08))  # eyebrow
        paint(ellipse(eye_x, eye_height, 0.24 * spacing, 0.12 * spacing), (0.95, 0.95, 0.92))  # white
        paint(ellipse(eye_x, eye_height, 0.1 * spacing, 0.1 * spacing), (0.12, 0.08, 0.05))  # iris
    mouth_height = float(nose[1]) - 0.75 * (eye_height - float(nose[1]))
    paint(ellipse(float(nose[0]), mouth_height, 0.4 * spacing, 0.09 * spacing), (0.6, 0.2, 0.2))
    return painted


def _lambert(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(V,) shade in [0.45, 1] of posed (V, 3) vertices in camera axes, lit by _LIGHT (smooth vertex normals)."""
    normal = vertex_normals(vertices[None], faces)[0]
    light = normal.new_tensor(_LIGHT)
    light = light / light.norm()
    return 0.45 + 0.55 * (normal @ light).abs()


def _mask_box(mask: np.ndarray, keypoints_2d: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 in pixels around the mask (around the keypoints when the mask is empty)."""
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        low, high = keypoints_2d.min(axis=0), keypoints_2d.max(axis=0)
        return np.array([low[0], low[1], high[0], high[1]], dtype=np.float32)
    return np.array([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1], dtype=np.float32)

