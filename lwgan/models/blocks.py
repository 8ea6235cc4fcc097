"""Layers, result types and helpers shared by the generators and the discriminator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from lwgan.checks import check_shape
from lwgan.flow.warp import resize_grid, warp

if TYPE_CHECKING:
    from lwgan.flow.inputs import GeneratorInputs

INIT_STD = 0.02
"""Standard deviation of the normal initialisation of every convolution weight (original `init_weights`)."""


@dataclass(frozen=True)
class GeneratorOutput:
    """What a generator makes for one batch of transfers (all images in [-1, 1], masks in [0, 1]).

    image: (B, 3, H, W) the composite, background_mask * background + (1 - background_mask) * colour.
    colour: (B, 3, H, W) the transfer stream's colour image (tanh).
    background_mask: (B, 1, H, W) the transfer stream's attention mask, 1 = background (the
        original's mask, trained towards the mesh's background mask).
    background: (B, 3, H, W) the inpainted background.
    source_reconstruction: (B, 3, H, W) the source stream's composite on the same background
        (training pairs come from one static-camera video); (B, ns, 3, H, W) for the multi-source
        generator.
    source_colour: (B, 3, H, W) or (B, ns, 3, H, W), the source stream's colour image.
    source_background_mask: (B, 1, H, W) or (B, ns, 1, H, W), the source stream's mask, 1 = background.
    """

    image: torch.Tensor
    colour: torch.Tensor
    background_mask: torch.Tensor
    background: torch.Tensor
    source_reconstruction: torch.Tensor
    source_colour: torch.Tensor
    source_background_mask: torch.Tensor


@dataclass(frozen=True)
class StreamOutput:
    """One stream's prediction composited on a background.

    image: (..., 3, H, W) background_mask * background + (1 - background_mask) * colour, in [-1, 1].
    colour: (..., 3, H, W) tanh colour image.
    background_mask: (..., 1, H, W) sigmoid attention mask, 1 = background.
    """

    image: torch.Tensor
    colour: torch.Tensor
    background_mask: torch.Tensor


class ConfigurableModule(nn.Module):
    """A network rebuilt from its constructor's keyword arguments: `config`, and named presets.

    Subclasses set PRESETS (name -> keyword arguments) and store their arguments in self._config.
    """

    PRESETS: dict[str, dict[str, Any]] = {}
    _config: dict[str, Any]

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        """A network of a named preset (see PRESETS), with keyword overrides."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    @property
    def config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-serialisable); cls(**config) rebuilds the architecture."""
        return dict(self._config)


def check_int_arguments(*, positive: bool, **arguments: Any) -> None:
    """ValueError naming the first of the constructor's `arguments` that is not a positive (else non-negative) int."""
    minimum, kind = (1, "positive") if positive else (0, "non-negative")
    for name, value in arguments.items():
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be a {kind} int, got {value!r}")


class ThreeStreamGenerator(ConfigurableModule):
    """What the generators share: the background stream's call, forward's order of the three streams, the checks of their inputs.

    A subclass stores its arguments in self._config (among them background_channels and the three
    below) and defines background_network (its background stream, under the original's attribute
    name), size_multiple, source_feature_counts, encode_source, reconstruct_source and transfer;
    forward runs them.

    Constructor arguments every generator takes:
        keep_known_background: the background stream fills only the hole (False: it repaints the whole
            picture, as the original does).
        refine: the transfer stream corrects the warped source image and the target mesh's background
            mask, the background stream the inpainted hole (lwgan.models.blocks.transfer_heads,
            background_stream); their last convolutions start at zero, so an untrained generator
            renders what texture warping does. False paints colours and masks, as the original.
        inputs: the recipe of the inputs it takes, recorded for whoever builds them
            (lwgan.flow.input_recipes.inputs_for): "warped" (the source warped along the flow
            with its UV atlas behind, and the source with its body cut out for the background
            stream) or "classical" (texture warping's body layer and inpainted background:
            lwgan.flow.input_recipes.classical_inputs), which `lwgan personalize` trains.
    """

    source_limit: int | None = None
    """The most sources per target it takes (None: any number)."""

    @property
    def background_network(self) -> nn.Module:
        """The background stream's network: (B, background_channels, H, W) -> (B, 3, H, W) tanh image."""
        raise NotImplementedError

    @property
    def size_multiple(self) -> int:
        """Image heights and widths must be multiples of this."""
        raise NotImplementedError

    @property
    def source_feature_counts(self) -> tuple[int, int]:
        """How many encoder and residual maps encode_source returns."""
        raise NotImplementedError

    def inpaint_background(self, background_input: torch.Tensor) -> torch.Tensor:
        """(B, background_channels, H, W) [image * background mask, background mask] -> (B, 3, H, W) in [-1, 1];
        with refine, the image's hole comes prefilled (lwgan.flow.inputs.prefilled).

        With keep_known_background (the default) only the hole is generated and the known source
        pixels are kept; the original networks repaint the whole image (False reproduces them).
        """
        self._check_input("background", background_input)
        return background_stream(self.background_network, background_input, self._config["refine"], self._config["keep_known_background"])

    def forward(
        self,
        background_input: torch.Tensor,
        source_input: torch.Tensor,
        transfer_input: torch.Tensor,
        grid: torch.Tensor,
    ) -> GeneratorOutput:
        """All three streams for B targets.

        Args:
            background_input: (B, background_channels, H, W) [source image * background mask, background mask] (the hole
                prefilled with refine: GeneratorInputs.prefilled_background_input).
            source_input: [source image * body mask, source condition] as encode_source takes it:
                (B, source_channels, H, W) for one source per target, (B, ns, source_channels, H, W) for ns.
            transfer_input: (B, transfer_channels, H, W) [warped source image, target condition].
            grid: the transfer flow (target pixel -> source NDC), OUTSIDE where none, as transfer takes
                it: (B, H, W, 2) for one source, (B, ns, H, W, 2) one per source.
        Returns:
            GeneratorOutput: image, colour (B, 3, H, W), mask (B, 1, H, W), background (B, 3, H, W);
            source_reconstruction and source_colour (B, 3, H, W) or (B, ns, 3, H, W), source_background_mask
            (B, 1, H, W) or (B, ns, 1, H, W).
        """
        background = self.inpaint_background(background_input)
        source_features = self.encode_source(source_input)
        source = self.reconstruct_source(source_features, background)
        target = self.transfer(source_features, transfer_input, grid, background)
        return GeneratorOutput(
            image=target.image,
            colour=target.colour,
            background_mask=target.background_mask,
            background=background,
            source_reconstruction=source.image,
            source_colour=source.colour,
            source_background_mask=source.background_mask,
        )

    def _check_input(self, stream: str, tensor: torch.Tensor, per_source: bool = False) -> None:
        """Check a stream's input "<stream>_input": (B, [ns,] <stream>_channels, H, W), H and W multiples of size_multiple."""
        sources = (None,) if per_source else ()
        check_shape(f"{stream}_input", tensor, (None, *sources, self._config[f"{stream}_channels"], None, None))
        check_divisible(f"{stream}_input", tensor, self.size_multiple)

    def _check_transfer_arguments(self, source_features: Any, transfer_input: torch.Tensor) -> tuple[int, int, int]:
        """Check transfer()'s source features and (B, transfer_channels, H, W) input; returns B, H, W."""
        self._check_features(source_features)
        self._check_input("transfer", transfer_input)
        batch, _, height, width = transfer_input.shape
        return batch, height, width

    def _check_features(self, source_features: Any) -> None:
        """ValueError unless source_features (with .encoder and .residual) holds source_feature_counts maps."""
        levels, res_blocks = self.source_feature_counts
        if len(source_features.encoder) != levels or len(source_features.residual) != res_blocks:
            raise ValueError(
                f"source_features must hold {levels} encoder and {res_blocks} residual maps, got "
                f"{len(source_features.encoder)} and {len(source_features.residual)}"
            )


def stage_outputs(stages: Iterable[nn.Module], features: torch.Tensor) -> list[torch.Tensor]:
    """Run `features` through `stages` in turn; every stage's output, in order (the last is the end result)."""
    outputs = []
    for stage in stages:
        features = stage(features)
        outputs.append(features)
    return outputs


INPUT_RECIPES = ("warped", "classical")
"""How a generator's inputs are built (a generator's `inputs` config key; lwgan.flow.input_recipes)."""


def check_input_recipe(recipe: str) -> str:
    """`recipe` when it is one of INPUT_RECIPES; ValueError otherwise."""
    if recipe not in INPUT_RECIPES:
        raise ValueError(f"inputs must be one of {', '.join(INPUT_RECIPES)}, got {recipe!r}")
    return recipe


def keep_known_background(generated: torch.Tensor, background_input: torch.Tensor) -> torch.Tensor:
    """The background stream's output where the hole is, the known source pixels elsewhere.

    generated: (B, 3, H, W); background_input: (B, 4, H, W) [image, known] with known = 1 outside
    the hole and 0 in it (the image's hole blank, or prefilled for a refining generator).
    Returns (B, 3, H, W) = image * known + generated * (1 - known).
    """
    known = background_input[:, 3:4]
    return background_input[:, :3] * known + generated * (1 - known)


def composite(colour: torch.Tensor, mask: torch.Tensor, background: torch.Tensor) -> StreamOutput:
    """Blend a stream's colour image over a background: image = mask * background + (1 - mask) * colour.

    Args:
        colour: (..., 3, H, W); mask: (..., 1, H, W), 1 = background; background: (B, 3, H, W) or
            any shape that broadcasts against colour (e.g. (B, 1, 3, H, W) for several sources).
    """
    image = mask * background + (1.0 - mask) * colour
    return StreamOutput(image=image, colour=colour, background_mask=mask)


def background_argument(inputs: GeneratorInputs, refine: bool) -> torch.Tensor:
    """The background stream's (B, 4, H, W) input from GeneratorInputs: the first source's, with its hole prefilled
    (GeneratorInputs.prefilled_background_input, lwgan.flow.inputs.prefilled) for a refining generator."""
    return inputs.prefilled_background_input if refine else inputs.background_input[:, 0]


def refined(base: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
    """A stream's colour as a correction of a classical estimate: clamp(base + correction, -1, 1); (B, 3, H, W) each.

    With refine=True the transfer stream corrects the warped source image (exact where the source
    sees the surface, the source's UV atlas where it does not) and the background stream corrects
    the inpainted hole, so an untrained network already does what texture warping does, and
    training spends itself on what warping gets wrong (hidden surface, shading, the hole's structure).
    """
    return (base + correction).clamp(-1.0, 1.0)


MASK_PRIOR_LOGIT = 8.0
"""How sure the refining transfer stream's attention mask starts: sigmoid(+-8) = 0.9997 / 0.0003 off the mesh / on it."""


def guided_mask(logit: torch.Tensor, transfer_input: torch.Tensor) -> torch.Tensor:
    """The refining transfer stream's attention mask: the target mesh's background mask, corrected by a learned logit.

    Args:
        logit: (B, 1, H, W) the mask head's convolution output (before its sigmoid).
        transfer_input: (B, 6, H, W) [warped image, target condition]; channel 5 is the condition
            map's background indicator (1 off the target mesh, lwgan.flow.conditions).
    Returns:
        (B, 1, H, W) sigmoid(logit + MASK_PRIOR_LOGIT * (2 * background - 1)), 1 = background.
    """
    background = transfer_input[:, 5:6]
    return torch.sigmoid(logit + MASK_PRIOR_LOGIT * (2.0 * background - 1.0))


def transfer_heads(
    colour_head: nn.Sequential, mask_head: nn.Sequential, features: torch.Tensor, transfer_input: torch.Tensor, refine: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The transfer stream's colour and attention mask from its last features.

    Args:
        colour_head: conv + tanh; mask_head: conv + sigmoid (mask_head[0] is the convolution).
        features: (B, C, H, W) the decoder's output; transfer_input: (B, 6, H, W) [warped image, target condition].
        refine: the colour corrects the warped image (refined) and the mask corrects the target
            mesh's background mask (guided_mask); False: both are painted, as the original.
    Returns:
        colour (B, 3, H, W) in [-1, 1], mask (B, 1, H, W) in [0, 1], 1 = background.
    """
    if not refine:
        return colour_head(features), mask_head(features)
    return refined(transfer_input[:, :3], colour_head(features)), guided_mask(mask_head[0](features), transfer_input)


def zero_initialize(*layers: nn.Conv2d) -> None:
    """Zero the weights (and biases) of the last convolutions of refining heads, so they start as "no correction"."""
    for layer in layers:
        nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def background_stream(network: nn.Module, background_input: torch.Tensor, refine: bool, keep_known: bool) -> torch.Tensor:
    """Run a generator's background network on (B, C, H, W) [image, known, ...] -> (B, 3, H, W).

    refine: the network corrects the image's hole, inpainted when the inputs were built
    (background_argument), instead of painting the blank hole of [image * known, known];
    keep_known: only the hole is generated (keep_known_background).
    """
    if refine:
        generated = refined(background_input[:, :3], network(background_input))
    else:
        generated = network(background_input)
    return keep_known_background(generated, background_input) if keep_known else generated


def initialize_weights(module: nn.Module, std: float = INIT_STD) -> None:
    """Initialise every (transposed) convolution of `module`: weight ~ N(0, std), bias = 0.

    Norm layers keep PyTorch's initialisation (weight 1, bias 0), as in the original code.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    norm: str = "none",
    bias: bool = True,
    transposed: bool = False,
) -> nn.Sequential:
    """Convolution (padding kernel_size // 2; transposed: 2x upsampling), optional instance norm, ReLU.

    norm: "affine" (InstanceNorm2d with weight and bias), "instance" (InstanceNorm2d without
    parameters) or "none". Child indices follow the original layouts: 0 conv, 1 norm, 2 ReLU, or
    0 conv, 1 ReLU without a norm. A transposed block with an odd kernel uses output_padding 1
    (the ICCV layout: k3 s2 p1 op1); with an even kernel it uses padding kernel_size // 2 - 1
    (the TPAMI layout: k4 s2 p1); either doubles H and W.
    """
    if transposed:
        if kernel_size % 2 == 1:
            convolution = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2,
                                             output_padding=1, bias=bias)
        else:
            convolution = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2 - 1,
                                             bias=bias)
    else:
        convolution = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
    layers: list[nn.Module] = [convolution]
    if norm != "none":
        layers.append(_instance_norm(out_channels, norm))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _instance_norm(channels: int, norm: str) -> nn.InstanceNorm2d:
    if norm == "affine":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    raise ValueError(f"norm must be 'affine', 'instance' or 'none', got {norm!r}")


class ResidualBlock(nn.Module):
    """x + main(x), main = conv3x3, [norm], ReLU, conv3x3, [norm]; (B, C, H, W) -> (B, C, H, W).

    With a norm the children of `main` are 0 conv, 1 norm, 2 ReLU, 3 conv, 4 norm (keys
    main.{0,1,3,4} for affine norms, main.{0,3} otherwise); without, 0 conv, 1 ReLU, 2 conv
    (keys main.{0,2}).
    """

    def __init__(self, channels: int, norm: str = "affine", bias: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, channels, 3, padding=1, bias=bias)]
        if norm != "none":
            layers.append(_instance_norm(channels, norm))
        layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(channels, channels, 3, padding=1, bias=bias))
        if norm != "none":
            layers.append(_instance_norm(channels, norm))
        self.main = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.main(features)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al. 2019) with a parameter-free instance norm.

    SPADE(x, condition) = IN(x) * (1 + gamma(condition)) + beta(condition), gamma and beta from a
    shared conv + ReLU of the condition (keys mlp_shared.0, mlp_gamma, mlp_beta).
    x: (B, channels, H, W); condition: (B, condition_channels, H, W) -> (B, channels, H, W).
    """

    def __init__(self, channels: int, condition_channels: int, hidden_channels: int = 128, kernel_size: int = 3) -> None:
        super().__init__()
        padding = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(condition_channels, hidden_channels, kernel_size, padding=padding), nn.ReLU(inplace=True))
        self.mlp_gamma = nn.Conv2d(hidden_channels, channels, kernel_size, padding=padding)
        self.mlp_beta = nn.Conv2d(hidden_channels, channels, kernel_size, padding=padding)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        hidden = self.mlp_shared(condition)
        return F.instance_norm(features) * (1.0 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class GridPyramid:
    """A flow grid resized once per feature-map size (lwgan.flow.warp.resize_grid), for warping features.

    grid: (N, H, W, 2) NDC sampling positions, OUTSIDE where nothing is sampled.
    """

    def __init__(self, grid: torch.Tensor) -> None:
        check_shape("grid", grid, (None, None, None, 2))
        self.grid = grid
        self._resized: dict[tuple[int, int], torch.Tensor] = {}

    def at(self, size: tuple[int, int]) -> torch.Tensor:
        """(N, h, w, 2) the grid resized to `size` (the full grid itself when the size matches)."""
        size = (int(size[0]), int(size[1]))
        if size == tuple(self.grid.shape[1:3]):
            return self.grid
        if size not in self._resized:
            self._resized[size] = resize_grid(self.grid, size)
        return self._resized[size]

    def warp(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Sample (N, C, h', w') features at the grid resized to `size` -> (N, C, *size); 0 where OUTSIDE."""
        return warp(features, self.at(size))


def check_divisible(name: str, tensor: torch.Tensor, factor: int) -> None:
    """Raise ValueError unless the last two sizes of `tensor` are divisible by `factor` (showing the shape)."""
    if tensor.shape[-1] % factor or tensor.shape[-2] % factor:
        raise ValueError(f"{name} height and width must be divisible by {factor}, got shape {tuple(tensor.shape)}")


def match_batch(tensor: torch.Tensor, batch_size: int, name: str) -> torch.Tensor:
    """Return `tensor` with leading size `batch_size`, expanding a leading size of 1 (no copy)."""
    if tensor.shape[0] == batch_size:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(batch_size, *tensor.shape[1:])
    raise ValueError(f"{name} has batch size {tensor.shape[0]}, expected {batch_size} or 1 (shape {tuple(tensor.shape)})")
