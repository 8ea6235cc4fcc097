"""The original released generators (impersonator ICCV'19, iPERCore AttLWB-SPADE) loaded into our models.

`checkpoint=FILE.pth` of the synthesis commands loads them directly; tools/convert_original_checkpoint.py
writes them as an export folder. The file is read with torch.load(weights_only=True) (no code from it runs), a DataParallel
`module.` prefix is stripped, the architecture (widths, depths, input channels) is read off the
tensor shapes, and every key and shape is checked against the model before OUT_DIR gets
model.safetensors + config.json (lwgan.models.from_pretrained loads it).

Where the files are (not shipped with lwgan; both are for non-commercial research use under their
authors' licences):
    iccv:      outputs/checkpoints.zip of https://github.com/svip-lab/impersonator,
               lwb_imper_fashion_place/net_epoch_30_id_G.pth (or lwb_imper/, lwb_imper_place/);
    attention: assets/checkpoints.zip of https://github.com/iPERDance/iPERCore,
               neural_renders/AttLWB-SPADE_id_G_2020-05-18.pth.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from lwgan.io.state_dicts import check_state_dict, read_state_dict_file
from lwgan.models.generator_attention import AttentionalLiquidWarpingGenerator
from lwgan.models.generator_iccv import LiquidWarpingGenerator

logger = logging.getLogger(__name__)

DATA_PARALLEL_PREFIX = "module."
KINDS = ("iccv", "attention")
FILE_NAMES = {"iccv": "net_epoch_30_id_G.pth", "attention": "AttLWB-SPADE_id_G_2020-05-18.pth"}


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an original checkpoint (a state dict) with torch.load(weights_only=True); strip `module.` prefixes.

    Raises FileNotFoundError naming the path, ValueError when the file is not a state dict of tensors.
    """
    path = Path(path)
    loaded = read_state_dict_file(path, "checkpoint", "Original generators: net_epoch_30_id_G.pth (ICCV'19) or AttLWB-SPADE_id_G_2020-05-18.pth (TPAMI'21).")
    state_dict = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: entry {key!r} is not a named tensor ({type(value).__name__})")
        state_dict[key.removeprefix(DATA_PARALLEL_PREFIX)] = value
    return state_dict


def _indices(state_dict: Mapping[str, torch.Tensor], prefix: str, suffix: str) -> list[int]:
    """Sorted integers i with a key `{prefix}{i}{suffix}` (e.g. prefix "src_model.resnets.", suffix ".main.0.weight")."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    return sorted({int(match.group(1)) for key in state_dict if (match := pattern.match(key))})


def _require(state_dict: Mapping[str, torch.Tensor], key: str, source: str, kind: str) -> torch.Tensor:
    if key not in state_dict:
        other = KINDS[1 - KINDS.index(kind)]
        raise ValueError(f"{source}: no key {key!r}, so this is not an original {kind!r} generator "
                         f"(expected {FILE_NAMES[kind]}; is it {other!r}, {FILE_NAMES[other]}?)")
    return state_dict[key]


def infer_iccv_config(state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
    """LiquidWarpingGenerator arguments read off the shapes of an original ImpersonatorGenerator state dict."""
    background = _require(state_dict, "bg_model.model.0.weight", source, "iccv")
    first_source = _require(state_dict, "src_model.encoders.0.0.weight", source, "iccv")
    first_transfer = _require(state_dict, "tsf_model.encoders.0.0.weight", source, "iccv")
    levels = _indices(state_dict, "src_model.encoders.", ".0.weight")
    return {
        "background_channels": int(background.shape[1]),
        "source_channels": int(first_source.shape[1]),
        "transfer_channels": int(first_transfer.shape[1]),
        "conv_dim": int(first_source.shape[0]),
        "repeat_num": len(_indices(state_dict, "src_model.resnets.", ".main.0.weight")),
        "n_down": len(levels) - 1,
        "keep_known_background": False,  # the original repaints the whole background
        "refine": False,  # and its streams paint colours, not corrections
        "inputs": "warped",  # from warped source images and the target's condition
    }


def infer_attention_config(state_dict: Mapping[str, torch.Tensor], source: str) -> dict:
    """AttentionalLiquidWarpingGenerator arguments read off the shapes of an original AttentionLWBGenerator state dict.

    The converted model keeps the original attention over all sources (mask_unseen_sources=False)
    and repaints the whole background as the original does (keep_known_background=False).
    """
    _require(state_dict, "bg_net.main.0.weight", source, "attention")
    _require(state_dict, "src_net.encoders.layers.0.0.weight", source, "attention")
    _require(state_dict, "tsf_net_enc.layers.0.0.weight", source, "attention")
    spade = _require(state_dict, "enc_attlwbs.0.spade.mlp_shared.0.weight", source, "attention")
    # bg_net.main holds, in order, 1 + (L - 1) convolutions down, residual blocks, (L - 1) up and 1 out:
    # 2 L top-level weights for L background levels; the first L give the level widths.
    background = [state_dict[f"bg_net.main.{index}.weight"] for index in _indices(state_dict, "bg_net.main.", ".weight")]
    source_levels = [state_dict[f"src_net.encoders.layers.{index}.0.weight"]
                     for index in _indices(state_dict, "src_net.encoders.layers.", ".0.weight")]
    transfer_levels = [state_dict[f"tsf_net_enc.layers.{index}.0.weight"]
                       for index in _indices(state_dict, "tsf_net_enc.layers.", ".0.weight")]
    return {
        "background_channels": int(background[0].shape[1]),
        "source_channels": int(source_levels[0].shape[1]),
        "transfer_channels": int(transfer_levels[0].shape[1]),
        "source_filters": [int(weight.shape[0]) for weight in source_levels],
        "transfer_filters": [int(weight.shape[0]) for weight in transfer_levels],
        "res_blocks": len(_indices(state_dict, "res_blocks.", ".main.0.weight")),
        "background_filters": [int(weight.shape[0]) for weight in background[: len(background) // 2]],
        "background_res_blocks": len(_indices(state_dict, "bg_net.main.", ".main.0.weight")),
        "spade_hidden": int(spade.shape[0]),
        "mask_unseen_sources": False,
        "keep_known_background": False,  # the original repaints the whole background
        "refine": False,  # and its streams paint colours, not corrections
        "inputs": "warped",  # from warped source images and the target's condition
    }


def guess_kind(state_dict: Mapping[str, torch.Tensor], source: str) -> str:
    """"iccv" or "attention": the kind whose architecture the state dict's shapes describe."""
    failures = []
    for kind, infer in (("iccv", infer_iccv_config), ("attention", infer_attention_config)):
        try:
            infer(state_dict, source)
        except ValueError as error:
            failures.append(f"not {kind}: {error}")
            continue
        return kind
    raise ValueError(f"{source} is neither original generator: " + "; ".join(failures))


def convert_original_generator(path: str | os.PathLike, kind: str | None = None) -> nn.Module:
    """Load an original generator file into our model: LiquidWarpingGenerator ("iccv") or
    AttentionalLiquidWarpingGenerator ("attention"), in eval mode on the CPU. kind=None takes
    the kind whose architecture the file's keys and shapes describe (guess_kind).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: not a plain state dict, not the given kind, or any key or shape that does not
            match (the message lists every missing and unexpected key and, for each mismatch, the
            key with the file's and the model's shapes).
    """
    source = str(path)
    state_dict = load_original_state_dict(path)
    kind = guess_kind(state_dict, source) if kind is None else kind
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "iccv":
        config = infer_iccv_config(state_dict, source)
        model_class: type[nn.Module] = LiquidWarpingGenerator
    else:
        config = infer_attention_config(state_dict, source)
        model_class = AttentionalLiquidWarpingGenerator
    try:
        model = model_class(**config)
    except ValueError as error:
        raise ValueError(f"{source}: the shapes give an invalid {model_class.__name__} ({config}): {error}") from error
    check_state_dict(state_dict, model.state_dict(), source, "the model")
    model.load_state_dict(state_dict, strict=True)
    logger.info("%s: %s %s, %d parameters", source, model_class.__name__, config, sum(p.numel() for p in model.parameters()))
    return model.eval()
