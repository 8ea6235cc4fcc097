"""The classical frames against synthetic truth: the hidden side from its counterpart, no background on the body."""

import math

import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION, project
from lwgan.body.model import PART_NAMES
from lwgan.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from lwgan.flow import texture_warping
from lwgan.flow.atlas import unwrap_to_atlas
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.flow.texture_warping import (
    ATLAS_SIZE,
    despeckled,
    facing_cosines,
    fill_within_parts,
    make_bank,
    warped_frames,
)
from lwgan.render import interpolate_vertex_attributes, rasterize, render_texture
from lwgan.render.inpaint import fill_holes
from lwgan.render.texture import rasterize_uv_atlas

SIZE = 256
CAMERA = torch.tensor([[1.0, 0.0, 0.05]])
PART_COLOURS = {
    "head": (0.85, 0.65, 0.5), "torso": (0.8, 0.1, 0.1), "left_leg": (0.1, 0.2, 0.8), "right_leg": (0.1, 0.2, 0.8),
    "left_arm": (0.1, 0.7, 0.2), "right_arm": (0.1, 0.7, 0.2), "left_foot": (0.2, 0.2, 0.2), "right_foot": (0.2, 0.2, 0.2),
    "left_hand": (0.85, 0.65, 0.5), "right_hand": (0.85, 0.65, 0.5),
}
SIDE_PARTS = ("torso", "left_leg", "right_leg", "left_arm", "right_arm")


def standing(heading: float = 0.0) -> torch.Tensor:
    """(1, 24, 3): upright, arms a little away from the body, turned by `heading` about the vertical."""
    pose = torch.zeros(1, 24, 3)
    upright = axis_angle_to_matrix(torch.tensor(UPRIGHT_ORIENTATION))
    pose[0, 0] = matrix_to_axis_angle(upright @ axis_angle_to_matrix(torch.tensor([0.0, heading, 0.0])))
    pose[0, 16, 2], pose[0, 17, 2] = -0.9, 0.9
    return pose


def garment_texture(body) -> torch.Tensor:
    """(1, 3, T, T): each part its colour, halved on a 12 cm checker of the body's rest (x, y).

    Front and back share a colour at every (x, y) of the rest body, so the back of a body seen
    from the front is known: a smooth fill from the seen texels blurs the checker and blends parts.
    """
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3)).vertices[0]
    atlas = rasterize_uv_atlas(body.uv, body.face_uv, ATLAS_SIZE)
    point = interpolate_vertex_attributes(atlas, body.faces, rest)[0]
    part = body.face_part[atlas.face_index[0].clamp_min(0)]
    colours = torch.tensor([PART_COLOURS[name] for name in PART_NAMES])[part]  # (T, T, 3)
    checker = (torch.floor(point[..., 0] / 0.12) + torch.floor(point[..., 1] / 0.12)) % 2
    texture = colours * (1.0 - 0.5 * checker.unsqueeze(-1))
    return torch.where(atlas.mask[0].unsqueeze(-1), texture, torch.zeros_like(texture)).permute(2, 0, 1)[None]


def render(body, pose, texture, background=1.0):
    with torch.no_grad():
        vertices = project(body(pose).vertices, CAMERA)
        fragments = rasterize(vertices, body.faces, SIZE)
        image = render_texture(fragments, body.uv, body.face_uv, texture, torch.full((1, 3, SIZE, SIZE), background))
    return vertices, fragments, image


def side_pixels(body, fragments, margin: int = 2) -> torch.Tensor:
    """(H, W) bool: pixels of torso, arms and legs, `margin` pixels inside their part."""
    part = body.face_part[fragments.face_index[0].clamp_min(0)]
    chosen = torch.isin(part, torch.tensor([PART_NAMES.index(name) for name in SIDE_PARTS])) & fragments.mask[0]
    inside = -torch.nn.functional.max_pool2d(-chosen[None, None].float(), 2 * margin + 1, 1, margin)[0, 0]
    return inside > 0.5


def seen_from_behind(body, texture):
    """The textured body photographed from the front, warped to a view from behind.

    Returns the frame and the truth (1, 3, H, W), the target's fragments, and the source's (vertices, image).
    """
    source_vertices, source_fragments, source_image = render(body, standing(), texture)
    target_vertices, target_fragments, truth = render(body, standing(math.pi), texture)
    bank = make_bank(body, source_image, source_vertices, CAMERA[:, 0], source_fragments.mask, torch.zeros(source_vertices.shape[1]))
    with torch.no_grad():
        frame = warped_frames(bank, target_vertices, body)
    return frame, truth, target_fragments, (source_vertices, source_image)


def test_the_back_takes_the_colours_of_the_front(anny_body):
    frame, truth, target_fragments, (source_vertices, source_image) = seen_from_behind(anny_body, garment_texture(anny_body))
    region = side_pixels(anny_body, target_fragments)
    error = (frame[0] - truth[0]).abs().amax(0)[region]
    # A smooth fill alone (what the atlas had before the prior): the seen texels pushed into the unseen.
    textures, seen = unwrap_to_atlas(source_image, source_vertices, anny_body.faces, anny_body.uv, anny_body.face_uv, size=ATLAS_SIZE)
    smooth = render_texture(target_fragments, anny_body.uv, anny_body.face_uv, fill_holes(textures, seen))
    smooth_error = (smooth[0] - truth[0]).abs().amax(0)[region]
    assert region.sum() > 3000
    assert (error < 0.1).float().mean() > 0.9, f"only {(error < 0.1).float().mean():.2f} of the back is right"
    assert error.mean() < 0.5 * smooth_error.mean()
    grey = (frame[0].amax(0) - frame[0].amin(0))[region] < 0.08  # a grey pixel: the channels agree (no part colour is grey)
    assert grey.float().mean() < 0.02


HAIR, SKIN = (0.25, 0.12, 0.05), (0.85, 0.65, 0.5)


def haired_texture(body, forehead: float = 0.0) -> torch.Tensor:
    """garment_texture with dark hair over the head off the front of the face from the nose's height up, and behind the ears down to the
    mouth's height (a head of short hair), skin on the face and neck, and on the front of the head up to `forehead` metres above the face."""
    texture = garment_texture(body)
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3)).vertices[0]
    atlas = rasterize_uv_atlas(body.uv, body.face_uv, ATLAS_SIZE)
    point = interpolate_vertex_attributes(atlas, body.faces, rest)[0]
    face = atlas.face_index[0].clamp_min(0)
    head = atlas.mask[0] & (body.face_part[face] == PART_NAMES.index("head"))
    front_face = body.face_masks["front_face"][face]
    height = point[..., 1][head & front_face]
    nose, mouth = height.mean(), (height.mean() + height.min()) / 2  # the face's middle height, halfway down to the chin
    behind = point[..., 2] < point[..., 2][head].mean()
    hair = head & ~front_face & ((point[..., 1] > nose) | (behind & (point[..., 1] > mouth)))
    top = height.max()
    hair &= behind | (point[..., 1] <= top) | (point[..., 1] > top + forehead)
    colour = torch.where(hair.unsqueeze(-1), torch.tensor(HAIR), torch.tensor(SKIN))
    return torch.where(head.unsqueeze(0).unsqueeze(0), colour.permute(2, 0, 1)[None], texture)


@pytest.mark.parametrize("forehead", [0.0, 0.01])
def test_the_back_of_the_head_takes_the_hair_around_the_face_down_to_the_nape(anny_body, forehead):
    """Also under a high hairline (1 cm of forehead skin above the face): the forehead is not hair (0.37 of the back was hair when it was)."""
    frame, truth, target_fragments, _ = seen_from_behind(anny_body, haired_texture(anny_body, forehead))
    on_head = target_fragments.face_values(anny_body.face_part)[0] == PART_NAMES.index("head")
    inside = -torch.nn.functional.max_pool2d(-on_head[None, None].float(), 5, 1, 2)[0, 0] > 0.5
    back_hair = inside & ((truth[0] - torch.tensor(HAIR)[:, None, None]).abs().amax(0) < 0.02)
    assert back_hair.sum() > 100  # the back of the head, seen from behind
    error = (frame[0] - truth[0]).abs().amax(0)[back_hair]
    # Down to the nape (91 % when the hair behind stopped at the nose's height, the rest taking the face's skin).
    assert (error < 0.1).float().mean() > 0.97, f"only {(error < 0.1).float().mean():.2f} of the back of the head is hair"


def test_a_body_on_white_warped_to_a_new_pose_has_no_white_on_it(anny_body):
    texture = garment_texture(anny_body)
    source_vertices, source_fragments, source_image = render(anny_body, standing(), texture)
    moved = standing()
    moved[0, 1, 0], moved[0, 4, 0], moved[0, 17, 2] = -0.5, 0.7, 0.3  # a thigh forward, knee bent, an arm raised
    target_vertices, target_fragments, _ = render(anny_body, moved, texture)
    # The fit is never exact: the fitted body is 1.5 cm wider than the person all round, in both poses.
    wider = torch.full((source_vertices.shape[1],), 0.015)
    shape = anny_body.default_shape(1)
    with torch.no_grad():
        fitted_source, fitted_target = (posed_vertices_ndc(anny_body, pose, shape, CAMERA, wider) for pose in (standing(), moved))
        bank = make_bank(anny_body, source_image, fitted_source, CAMERA[:, 0], source_fragments.mask, wider)
        frame = warped_frames(bank, fitted_target, anny_body)
    person = -torch.nn.functional.max_pool2d(-target_fragments.mask[None].float(), 3, 1, 1)[0, 0] > 0.5  # the true body, 1 px in
    white = (frame[0] > 0.9).all(0) & person
    assert white.sum() == 0, f"{int(white.sum())} white pixels on the body"
    # Where the wider fitted body covers the background, the person's own outline shows the background.
    beside = rasterize(fitted_target, anny_body.faces, SIZE).mask[0] & ~target_fragments.mask[0]
    assert beside.sum() > 100
    assert (frame[0] > 0.9).all(0)[beside].float().mean() > 0.5


def test_untrusted_pixels_fill_from_their_own_body_part():
    """A thin arm (part 4) against a cyan dress (part 1) with only a few trusted arm pixels: its untrusted pixels take the arm's colour."""
    skin, dress, white = torch.tensor([0.9, 0.7, 0.6]), torch.tensor([0.5, 1.0, 1.0]), torch.ones(3)
    part = torch.full((1, 32, 32), -1)
    part[0, 4:28, 8:20] = PART_NAMES.index("torso")
    part[0, 4:28, 20:23] = PART_NAMES.index("left_arm")
    images = white[None, :, None, None].expand(1, 3, 32, 32).clone()
    images[0, :, 4:28, 8:20] = dress[:, None, None]
    images[0, :, 4:28, 20:23] = skin[:, None, None]
    covered = part >= 0
    trusted = torch.zeros_like(covered)
    trusted[0, 6:26, 10:18] = True  # the dress, away from its edges
    trusted[0, 15, 21] = True  # one arm pixel
    filled = fill_within_parts(images, trusted, part, covered)
    torch.testing.assert_close(filled[0, :, 4:28, 20:23], skin[:, None, None].expand(3, 24, 3))
    torch.testing.assert_close(filled[0, :, 4:28, 8:10], dress[:, None, None].expand(3, 24, 2))
    # A part with no trusted pixel at all keeps its own colour too.
    trusted[0, 15, 21] = False
    torch.testing.assert_close(fill_within_parts(images, trusted, part, covered)[0, :, 4:28, 20:23], skin[:, None, None].expand(3, 24, 3))


def test_layers_keep_a_sleeves_untrusted_pixels_from_the_bare_forearm_below_it():
    """One arm (one body part): a sleeve (garment, layer 0) over a bare forearm (skin, layer 1), the sleeve trusted at one pixel only.

    By part alone the sleeve's untrusted pixels mostly take the forearm's skin; by layer they take the
    sleeve's colour. Pixels of no layer (-1) keep the part's fill.
    """
    skin, sleeve = torch.tensor([0.9, 0.7, 0.6]), torch.tensor([0.1, 0.2, 0.8])
    part = torch.full((1, 32, 32), -1)
    part[0, 4:28, 8:20] = PART_NAMES.index("left_arm")
    images = torch.ones(1, 3, 32, 32)
    images[0, :, 4:12, 8:20] = sleeve[:, None, None]
    images[0, :, 12:28, 8:20] = skin[:, None, None]
    layers = torch.full((1, 32, 32), -1)
    layers[0, 4:12, 10:20] = 0
    layers[0, 12:28, 8:20] = 1
    covered = part >= 0
    trusted = torch.zeros_like(covered)
    trusted[0, 14:26, 10:18] = True  # the forearm, away from its edges
    trusted[0, 6, 14] = True  # one sleeve pixel
    by_part = fill_within_parts(images, trusted, part, covered)
    assert (by_part[0, :, 4:12, 10:20] - sleeve[:, None, None]).abs().amax() > 0.3
    by_layer = fill_within_parts(images, trusted, part, covered, layers)
    torch.testing.assert_close(by_layer[0, :, 4:12, 10:20], sleeve[:, None, None].expand(3, 8, 10))
    torch.testing.assert_close(by_layer[0, :, 12:28, 8:20], skin[:, None, None].expand(3, 16, 12))
    torch.testing.assert_close(by_layer[0, :, 4:12, 8:10], by_part[0, :, 4:12, 8:10])


def arms_hanging(angle: float) -> torch.Tensor:
    """standing() with both arms lowered by `angle` radians from the T pose, towards the body."""
    pose = standing()
    pose[0, 16, 2], pose[0, 17, 2] = -angle, angle
    return pose


def test_an_arm_beside_the_body_does_not_carry_the_garment_into_a_new_pose(anny_body):
    """Arms hang close to a red top; the fit lowers them a little too far, onto the top; raised, they must stay green."""
    texture = garment_texture(anny_body)
    raised = arms_hanging(0.3)
    target_vertices, target_fragments, _ = render(anny_body, raised, texture)
    part = target_fragments.face_values(anny_body.face_part)[0]
    arms = torch.isin(part, torch.tensor([PART_NAMES.index("left_arm"), PART_NAMES.index("right_arm")])) & target_fragments.mask[0]
    shape = anny_body.default_shape(1)
    no_offsets = torch.zeros(target_vertices.shape[1])
    for fitted_angle in (1.25, 1.3):  # the true arms hang at 1.2
        source_vertices, source_fragments, source_image = render(anny_body, arms_hanging(1.2), texture)
        with torch.no_grad():
            fitted_source, fitted_target = (posed_vertices_ndc(anny_body, pose, shape, CAMERA, no_offsets) for pose in (arms_hanging(fitted_angle), raised))
            bank = make_bank(anny_body, source_image, fitted_source, CAMERA[:, 0], source_fragments.mask, no_offsets)
            frame = warped_frames(bank, fitted_target, anny_body)
        red = (frame[0, 0] - frame[0, 1] > 0.3) & arms  # the top's colour (the arms are green, a checker halves both)
        assert arms.sum() > 1000
        assert red.sum() <= 2, f"{int(red.sum())} pixels of the top on the arms (fitted at {fitted_angle})"  # 12 and 7 when an arm's edge beside the body was trusted



def test_despeckled_replaces_stray_candidate_pixels_and_keeps_stripes_edges_and_the_rest():
    top, dark, yellow = torch.tensor([0.8, 0.1, 0.1]), torch.tensor([0.1, 0.1, 0.3]), torch.tensor([0.9, 0.8, 0.1])
    colour = torch.zeros(1, 3, 40, 40)
    body = torch.zeros(1, 40, 40, dtype=torch.bool)
    body[0, 5:35, 5:35] = True
    colour[0, :, 5:35, 5:35] = top[:, None, None]
    colour[0, :, 10:13, 5:35] = yellow[:, None, None]  # a stripe 3 px wide
    for row, column in ((20, 8), (20, 14), (20, 20), (20, 28), (5, 15)):  # dots; (5, 15) lies on the body's outline
        colour[0, :, row, column] = dark
    colour[0, :, 30, 5:24] = dark[:, None]  # a line 1 px wide
    candidates = body.clone()
    candidates[0, :, 24:] = False  # e.g. the pixels a source coloured directly
    result = despeckled(colour, body, candidates)[0]
    for row, column in ((20, 8), (20, 14), (20, 20)):
        assert torch.equal(result[:, row, column], top)  # the median of eight top pixels and the dot
    assert torch.equal(result[:, 30, 6:23], top[:, None].expand(-1, 17))
    assert torch.equal(result[:, 20, 28], dark) and torch.equal(result[:, 5, 15], dark)  # not a candidate; on the outline
    assert torch.equal(result[:, 10:13, 6:34], colour[0, :, 10:13, 6:34])  # the stripe, but for its ends' corners
    unchanged = torch.ones(40, 40, dtype=torch.bool)
    unchanged[20, [8, 14, 20]] = False
    unchanged[30, 5:24] = False
    unchanged[10:13, [5, 34]] = False
    assert torch.equal(result[:, unchanged], colour[0][:, unchanged])


def test_facing_cosines_against_the_normals_in_metres(anny_body):
    """The cosines from NDC meshes (camera scale 2.5) against each face's normal computed in metres, for a body turned about the vertical."""
    camera = torch.tensor([[2.5, 0.0, 0.05]])
    for heading in (0.0, 0.7, math.pi / 2, 2.5):
        with torch.no_grad():
            metres = anny_body(standing(heading)).vertices
            cosines = facing_cosines(project(metres, camera), anny_body.faces, camera[:, 0])[0]
        corners = metres[0, anny_body.faces]
        normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        large = normal.norm(dim=-1) > 1e-6  # faces of measurable area (float32 rounding on the tiniest)
        towards_the_camera = torch.tensor([0.0, 0.0, -1.0])  # depth grows away from the camera
        expected = (normal @ towards_the_camera) / normal.norm(dim=-1)
        assert large.float().mean() > 0.99
        assert torch.allclose(cosines[large], expected[large], atol=1e-3)
    # Turned a quarter round, the chest is seen edge-on: its faces' cosines average near 0 (near 1 facing the camera).
    chest = anny_body.face_masks["front_body"] & (anny_body.face_part == PART_NAMES.index("torso"))
    with torch.no_grad():
        for heading, (low, high) in ((0.0, (0.7, 1.0)), (math.pi / 2, (-0.3, 0.3))):
            vertices = project(anny_body(standing(heading)).vertices, camera)
            mean = facing_cosines(vertices, anny_body.faces, camera[:, 0])[0][chest].mean()
            assert low < mean < high, (heading, mean)


def test_points_a_source_sees_edge_on_take_no_colour_from_it(anny_body, monkeypatch):
    """The source's pixels of surface seen nearly edge-on (at a person's outline: blurred, half background) are painted magenta; seen from
    the side, the body shows almost none of it."""
    texture = garment_texture(anny_body)
    source_vertices, source_fragments, source_image = render(anny_body, standing(), texture)
    target_vertices, target_fragments, _ = render(anny_body, standing(math.pi / 2), texture)
    cosines = facing_cosines(source_vertices, anny_body.faces, CAMERA[:, 0])[0]
    edge_on = source_fragments.mask[0] & (cosines[source_fragments.face_index[0].clamp_min(0)] < texture_warping.GRAZING_COSINE)
    magenta = torch.tensor([1.0, 0.0, 1.0])
    painted = torch.where(edge_on, magenta[:, None, None], source_image[0])[None]

    def magenta_pixels() -> int:
        with torch.no_grad():
            bank = make_bank(anny_body, painted, source_vertices, CAMERA[:, 0], source_fragments.mask, torch.zeros(source_vertices.shape[1]))
            frame = warped_frames(bank, target_vertices, anny_body)[0]
        return int(((frame - magenta[:, None, None]).abs().amax(0) < 0.25)[target_fragments.mask[0]].sum())

    assert edge_on.sum() > 500
    assert magenta_pixels() <= 5  # measured 3: the atlas's bilinear samples of facing texels beside edge-on pixels
    monkeypatch.setattr(texture_warping, "GRAZING_COSINE", -2.0)  # every point a source sees counts as facing it
    assert magenta_pixels() > 50  # measured 113
