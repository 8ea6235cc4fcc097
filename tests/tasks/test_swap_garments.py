"""Swaps between synthetic people with known garments: the old top goes whole, nothing below the donor's waist, no donor hands or skin.

Both photos are rendered here from the real body model in flat colours, one per garment, painted on
the body at rest by heights and widths chosen in this file (not lwgan.tasks.garment's waist line):
    the person: a loose red top with long sleeves whose hem hangs over the hips, worn 2.5 cm off
        the body (so the fitted, unclothed mesh misses its edges and sleeves), blue trousers, light skin;
    the donor: a green top with short sleeves, high-waisted yellow trousers that reach well above
        the hips, dark skin, the hands on the hips.
The fits handed to the Swapper are the rendered bodies (the donor's arms a little off where a test
says so, as a real fit is). The result's pixels are compared with the garments' colours.
"""

import numpy as np
import pytest
import torch

from lwgan.body.camera import UPRIGHT_ORIENTATION
from lwgan.body.model import PART_NAMES
from lwgan.flow.inputs import posed_vertices_ndc
from lwgan.render import lookup_face_attributes, rasterize
from lwgan.tasks.garment import parse_garments
from lwgan.tasks.people import PhotoPerson
from lwgan.tasks.swap import Swapper, chosen_parts

SIZE = 128
CAMERA = np.array([1.0, 0.0, 0.05], np.float32)
BACKGROUND = (0.6, 0.6, 0.65)
SHOES = (0.12, 0.12, 0.12)
PERSON_SKIN, PERSON_TOP, PERSON_BOTTOM = (0.96, 0.80, 0.69), (0.8, 0.1, 0.1), (0.1, 0.2, 0.8)
DONOR_SKIN, DONOR_TOP, DONOR_BOTTOM = (0.47, 0.32, 0.22), (0.1, 0.7, 0.2), (0.9, 0.8, 0.1)
TANNED_FACE, SLEEVE_SHADOW = (0.72, 0.52, 0.40), (0.42, 0.30, 0.24)
"""A face darker than the arms, and the shadow a short sleeve casts on the arm: both of skin's chroma, darker."""
LOOSE = 0.025
"""The person's top stands this far (metres) off the body in the photo; the fit given to the swap has no clothing."""
CLOSE = 0.12
"""A pixel shows a colour when every channel lies within this of it (in [0, 1])."""


def standing(arms_lowered: float, elbows_bent: float = 0.0) -> np.ndarray:
    """(24, 3) upright, facing the camera, the arms lowered by `arms_lowered` radians from the T-pose and the forearms bent `elbows_bent` radians forwards."""
    pose = torch.zeros(24, 3)
    pose[0] = torch.tensor(UPRIGHT_ORIENTATION)
    pose[16, 2], pose[17, 2] = -arms_lowered, arms_lowered
    pose[18, 1], pose[19, 1] = -elbows_bent, elbows_bent
    return pose.numpy()


def face_colours(body, top_hem: float, sleeve_end: float, skin, top, bottom, face=None, shadow=None) -> torch.Tensor:
    """(F, 3): skin on the head, hands and bare arms; `top` on the torso above `top_hem` (metres, rest height
    above the pelvis joint) and on the arms out to `sleeve_end` (metres from the body's midline); `bottom`
    on the rest of the torso and the legs; shoes on the feet. `face`: the head's colour instead of the skin;
    `shadow`: the colour of the arms' 3 cm beyond the sleeve."""
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3))
    centre = rest.vertices[0][body.faces].mean(1)
    height, width = centre[:, 1] - rest.joints[0, 0, 1], centre[:, 0].abs()
    part = [PART_NAMES[index] for index in body.face_part.tolist()]

    def is_part(*names: str) -> torch.Tensor:
        return torch.tensor([name in names for name in part])

    colour = torch.tensor(skin).expand(len(part), 3).clone()
    colour[is_part("torso") | is_part("left_leg", "right_leg")] = torch.tensor(bottom)
    colour[(is_part("torso") & (height > top_hem)) | (is_part("left_arm", "right_arm") & (width < sleeve_end))] = torch.tensor(top)
    colour[is_part("left_foot", "right_foot")] = torch.tensor(SHOES)
    if face is not None:
        colour[is_part("head")] = torch.tensor(face)
    if shadow is not None:
        colour[is_part("left_arm", "right_arm") & (width >= sleeve_end) & (width < sleeve_end + 0.03)] = torch.tensor(shadow)
    return colour


def photo(body, name: str, pose: np.ndarray, colours: torch.Tensor, fitted_pose: np.ndarray | None = None,
          loose: torch.Tensor | None = None) -> PhotoPerson:
    """The body in `pose`, painted with (F, 3) `colours` (and `loose` (V,) offsets) over BACKGROUND, fitted as `fitted_pose` (default: `pose`) without clothing."""
    shape = body.default_shape(1)
    with torch.no_grad():
        vertices = posed_vertices_ndc(body, torch.from_numpy(pose)[None], shape, torch.from_numpy(CAMERA)[None], loose)
        fragments = rasterize(vertices, body.faces, SIZE)
    image = lookup_face_attributes(fragments, colours, background=torch.tensor(BACKGROUND))[0]
    pixels = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    mask = fragments.mask[0].numpy().astype(np.float32)
    return PhotoPerson(name, pixels, mask, pose if fitted_pose is None else fitted_pose, shape[0].numpy(), CAMERA, np.zeros(len(body.mirror_vertices), np.float32))


def showing(frame: np.ndarray, colour) -> np.ndarray:
    """(H, W) bool: the pixels of an (H, W, 3) uint8 frame within CLOSE of an RGB `colour` in [0, 1]."""
    return (np.abs(frame / 255.0 - np.asarray(colour)) <= CLOSE).all(-1)


def parts_drawn(body, pose: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(H, W) bool: where the unclothed body in `pose` shows the parts `names`, one pixel inside them."""
    with torch.no_grad():
        vertices = posed_vertices_ndc(body, torch.from_numpy(pose)[None], body.default_shape(1), torch.from_numpy(CAMERA)[None])
        face_index = rasterize(vertices, body.faces, SIZE).face_index[0]
    on_parts = torch.isin(body.face_part[face_index.clamp_min(0)], torch.tensor([PART_NAMES.index(name) for name in names])) & (face_index >= 0)
    inside = -torch.nn.functional.max_pool2d(-on_parts[None, None].float(), 3, 1, 1)[0, 0]
    return inside.numpy() > 0.5


def above_the_feet(body, pose: np.ndarray) -> np.ndarray:
    """(H, W) bool: the rows above the feet (where the shoes' edges blend with the background into every dark colour)."""
    rows = np.where(parts_drawn(body, pose, ("left_foot", "right_foot")).any(1))[0]
    return np.arange(SIZE)[:, None].repeat(SIZE, 1) < rows.min() - 1


@pytest.fixture(scope="module")
def person(anny_body):
    colours = face_colours(anny_body, top_hem=-0.08, sleeve_end=1.0, skin=PERSON_SKIN, top=PERSON_TOP, bottom=PERSON_BOTTOM)
    top_vertices = torch.zeros(len(anny_body.mirror_vertices), dtype=torch.bool)
    top_vertices[anny_body.faces[(colours == torch.tensor(PERSON_TOP)).all(-1)].reshape(-1)] = True
    loose = torch.where(top_vertices, torch.tensor(LOOSE), torch.tensor(0.0))
    return photo(anny_body, "person", standing(0.9), colours, loose=loose)


@pytest.fixture(scope="module")
def donor(anny_body):
    """The donor with the hands on the hips; the fit has the arms 0.1 rad higher and the elbows 0.2 rad straighter (the hands a few pixels off)."""
    colours = face_colours(anny_body, top_hem=0.15, sleeve_end=0.3, skin=DONOR_SKIN, top=DONOR_TOP, bottom=DONOR_BOTTOM)
    return photo(anny_body, "donor", standing(1.7, 1.2), colours, fitted_pose=standing(1.6, 1.0))


@pytest.fixture(scope="module")
def swapper(anny_body):
    return Swapper(image_size=SIZE, body=anny_body)


def test_the_synthetic_photos_show_what_the_tests_expect(person, donor, anny_body):
    # The person's loose top reaches beyond the fitted (unclothed) mesh, and its hem over the hips.
    assert (showing(person.image, PERSON_TOP) & ~parts_drawn(anny_body, person.pose, PART_NAMES)).sum() > 30
    # The donor's hands lie over the hips and thighs of the fitted mesh.
    hands = showing(donor.image, DONOR_SKIN) & ~parts_drawn(anny_body, donor.pose, ("head", "left_arm", "right_arm", "left_hand", "right_hand"))
    assert hands.sum() > 10
    assert showing(donor.image, DONOR_BOTTOM).sum() > 0.5 * showing(donor.image, DONOR_TOP).sum()


def test_parsing_finds_the_donors_bare_arms_and_high_trousers(anny_body):
    colours = face_colours(anny_body, top_hem=0.15, sleeve_end=0.3, skin=DONOR_SKIN, top=DONOR_TOP, bottom=DONOR_BOTTOM)
    donor = photo(anny_body, "donor", standing(1.3), colours)
    parsing = parse_garments(anny_body, donor)
    bare_arms = showing(donor.image, DONOR_SKIN) & parts_drawn(anny_body, donor.pose, ("left_arm", "right_arm"))
    assert bare_arms.sum() > 30 and parsing.skin[bare_arms].mean() > 0.9
    assert not (parsing.skin & ~showing(donor.image, DONOR_SKIN)).any()
    # The trousers reach above the waist line on the body; by their colour they are all the bottom's (hips or legs).
    bottom = showing(donor.image, DONOR_BOTTOM)
    lower = [PART_NAMES.index("left_leg"), PART_NAMES.index("right_leg"), len(PART_NAMES)]
    assert np.isin(parsing.region[bottom], lower).mean() > 0.99
    assert not np.isin(parsing.region[showing(donor.image, DONOR_TOP)], lower).any()


def test_an_upper_swap_replaces_the_whole_top_and_takes_nothing_below_the_donors_waist(person, donor, swapper, anny_body):
    frame = swapper.swap_people([person], [donor], chosen_parts("upper")).frames[0]
    body = above_the_feet(anny_body, person.pose)
    assert showing(frame, PERSON_TOP).sum() <= 2, "the old top (its loose edges, sleeves and hem) is gone"
    assert showing(frame, DONOR_BOTTOM).sum() == 0, "nothing of the donor's trousers"
    assert (showing(frame, DONOR_SKIN) & body).sum() == 0, "no donor skin or hands"
    chest = parts_drawn(anny_body, person.pose, ("torso",)) & showing(person.image, PERSON_TOP)
    assert showing(frame, DONOR_TOP)[chest].mean() > 0.8
    # The person's trousers stay.
    legs = parts_drawn(anny_body, person.pose, ("left_leg", "right_leg")) & showing(person.image, PERSON_BOTTOM)
    assert showing(frame, PERSON_BOTTOM)[legs].mean() > 0.95


def test_the_donors_bare_arms_come_in_the_persons_skin_colour(person, swapper, anny_body):
    colours = face_colours(anny_body, top_hem=0.15, sleeve_end=0.3, skin=DONOR_SKIN, top=DONOR_TOP, bottom=DONOR_BOTTOM)
    donor = photo(anny_body, "donor", standing(1.3), colours)
    frame = swapper.swap_people([person], [donor], chosen_parts("upper")).frames[0]
    # The person's forearms, under the old long sleeves, are bare now: in the person's own skin colour, not the donor's.
    arms = parts_drawn(anny_body, person.pose, ("left_arm", "right_arm"))
    forearms = arms & ~showing(frame, DONOR_TOP)
    assert forearms.sum() > 0.3 * arms.sum() and showing(frame, PERSON_SKIN)[forearms].mean() > 0.8
    assert (showing(frame, DONOR_SKIN) & above_the_feet(anny_body, person.pose)).sum() == 0


def test_bare_arms_take_the_persons_arm_colour_and_the_old_sleeves_shadow_goes(swapper, anny_body):
    # The person: a tanned face, lighter bare forearms below short sleeves, which shade the arm just beyond them. The donor's
    # top is sleeveless: the person's upper arms come out bare, in the colour of their own arms (not the face's), and the
    # dark band under the old sleeves goes with the sleeves.
    colours = face_colours(anny_body, top_hem=-0.08, sleeve_end=0.33, skin=PERSON_SKIN, top=PERSON_TOP, bottom=PERSON_BOTTOM,
                           face=TANNED_FACE, shadow=SLEEVE_SHADOW)
    person = photo(anny_body, "person", standing(0.9), colours)
    donor = photo(anny_body, "donor", standing(1.3), face_colours(anny_body, top_hem=0.15, sleeve_end=0.0, skin=DONOR_SKIN, top=DONOR_TOP,
                                                                   bottom=DONOR_BOTTOM))
    assert showing(person.image, SLEEVE_SHADOW).sum() > 10
    frame = swapper.swap_people([person], [donor], chosen_parts("upper")).frames[0]
    arms = parts_drawn(anny_body, person.pose, ("left_arm", "right_arm"))
    upper_arms = arms & showing(person.image, PERSON_TOP)
    assert upper_arms.sum() > 30
    assert showing(frame, PERSON_SKIN)[upper_arms].mean() > 0.8
    assert showing(frame, TANNED_FACE)[arms].sum() == 0
    assert showing(frame, SLEEVE_SHADOW)[arms].sum() == 0


def test_a_whole_swap_puts_no_donor_hand_on_the_hips_or_thighs(person, donor, swapper, anny_body):
    frame = swapper.swap_people([person], [donor], chosen_parts("whole")).frames[0]
    assert (showing(frame, DONOR_SKIN) & above_the_feet(anny_body, person.pose)).sum() == 0, "no donor hand or skin"
    legs = parts_drawn(anny_body, person.pose, ("left_leg", "right_leg"))
    assert showing(frame, DONOR_BOTTOM)[legs].mean() > 0.95
    assert showing(frame, PERSON_TOP).sum() + showing(frame, PERSON_BOTTOM).sum() <= 2


def test_an_upper_swap_covers_a_sleeveless_persons_shoulders_where_the_donors_outline_lies_inside_the_fit(swapper, anny_body):
    """The donor is photographed 2 cm thinner than the fitted body (the fit's edge a pixel or two outside the donor, as on real photos).

    The new top lets the background through along the donor's outline; over the person's own bare
    shoulders and arms it must stay opaque: where the donor's top lies on the person's body, no
    person skin and no background show, and the bare forearms stay the person's skin.
    """
    bare_arms = face_colours(anny_body, top_hem=-0.08, sleeve_end=0.0, skin=PERSON_SKIN, top=PERSON_TOP, bottom=PERSON_BOTTOM)
    person = photo(anny_body, "sleeveless person", standing(1.2), bare_arms)
    colours = face_colours(anny_body, top_hem=0.15, sleeve_end=0.3, skin=DONOR_SKIN, top=DONOR_TOP, bottom=DONOR_BOTTOM)
    thinner = torch.full((len(anny_body.mirror_vertices),), -0.02)
    donor = photo(anny_body, "thin donor", standing(1.3), colours, loose=thinner)
    frame = swapper.swap_people([person], [donor], chosen_parts("upper")).frames[0]
    with torch.no_grad():
        vertices = posed_vertices_ndc(anny_body, torch.from_numpy(person.pose)[None], anny_body.default_shape(1), torch.from_numpy(CAMERA)[None])
        dressed = lookup_face_attributes(rasterize(vertices, anny_body.faces, SIZE), colours, background=torch.tensor(BACKGROUND))[0]
    under_top = showing((dressed.numpy() * 255 + 0.5).astype(np.uint8), DONOR_TOP)
    assert under_top.sum() > 300
    assert showing(frame, PERSON_SKIN)[under_top].sum() == 0, "the person's shoulders show beside the new top"
    assert showing(frame, BACKGROUND)[under_top].sum() == 0, "the background shows through the new top"
    assert showing(frame, DONOR_TOP)[under_top].mean() > 0.95
    forearms = parts_drawn(anny_body, person.pose, ("left_arm", "right_arm")) & ~under_top
    assert forearms.sum() > 50 and showing(frame, PERSON_SKIN)[forearms].mean() > 0.9
