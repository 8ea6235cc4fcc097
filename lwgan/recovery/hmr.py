"""HMR, the original regressor of SMPL parameters from a person crop (pre-activation ResNet-50 v2 + θ regressor).

θ layout (85 values, the layout of HMR, of the original impersonator code and of iPER's pose_shape.pkl):
    θ[0:3]   camera (s, tx, ty): weak perspective of lwgan.body.camera, x_ndc = s (X + tx),
             y_ndc = s (Y + ty), in the NDC of the 224 x 224 input crop (y down);
    θ[3:75]  pose: SMPL-24 axis-angle (24 x 3), joint 0 = global orientation, in HMR's image
             orientation: an upright person has a global rotation near (π, 0, 0), the flip that
             turns SMPL's y-up body into the y-down image (lwgan.body.camera.UPRIGHT_ORIENTATION,
             the convention of FitResult);
    θ[75:85] shape: 10 SMPL betas.
HMR predicts parameters of SMPL (lwgan.body.smpl_body.SmplBody), not of the free default body.

Layout choices (they reproduce the state-dict keys of the released `hmr_tf2pt.pth`, a TF-slim
resnet_v2_50 converted to PyTorch; the loader is lwgan.recovery.hmr_loader):
    - a bottleneck unit is pre-activated: preact = ReLU(bn1(x)) over the unit's input channels;
      residual = conv3(ReLU(bn3(conv2(ReLU(bn2(conv1(preact))))))), i.e. bn2/bn3 follow conv1/conv2
      (TF-slim's conv + batch-norm + ReLU), conv3 has a bias and no norm;
    - the identity path is `shortcut.0` (1x1 conv with bias, applied to preact) on the first unit of
      each layer (the only unit whose channel count changes), otherwise the raw input x
      subsampled by a 1x1 max-pool with the unit's stride;
    - the stride sits on the 3x3 conv2 of the LAST unit of layers 1-3 (TF-slim resnet_v2 blocks);
      layer4 has stride 1, so a 224 input gives 7 x 7 x 2048 features;
    - max-pool 3/2 with ceil_mode equals TF's "SAME" pooling of a 112 map (56 outputs);
    - BatchNorm2d modules keep PyTorch's `num_batches_tracked` buffer; the loader accepts files
      with or without it;
    - `regressor.fc_blocks` is an nn.Sequential with named children fc1, relu1, dropout1, fc2,
      relu2, dropout2, fc3, so its parameters are `fc_blocks.fc1.weight` and so on;
    - the regressor input is [features (2048), θ (85)] in this order;
    - `regressor.mean_theta` is a persistent buffer; the released file holds HMR's mean θ
      (s = 0.9, global rotation (π, 0, 0), mean pose and shape). A fresh model starts from
      s = 0.9, global rotation (π, 0, 0), every other value 0.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lwgan.checks import check_shape

INPUT_SIZE = 224
"""Side of HMR's square input crop, in pixels."""

FEATURE_DIM = 2048
THETA_DIM = 85
CAMERA_SLICE = slice(0, 3)
POSE_SLICE = slice(3, 75)
SHAPE_SLICE = slice(75, 85)
NUM_JOINTS = 24

LAYER_PLANES = (64, 128, 256, 512)
"""Bottleneck width of layer1..layer4; each unit outputs 4 x this many channels."""
LAYER_UNITS = (3, 4, 6, 3)
LAYER_STRIDES = (2, 2, 2, 1)
"""Stride of the last unit of each layer (the other units have stride 1)."""
EXPANSION = 4


@dataclass(frozen=True)
class HmrOutput:
    """HMR's prediction for a batch of B crops (views into theta).

    theta: (B, 85) [camera 3 | pose 72 | shape 10].
    camera: (B, 3) weak perspective (s, tx, ty) in the NDC of the input crop.
    pose: (B, 24, 3) SMPL axis-angle in the image orientation (upright ≈ global rotation (π, 0, 0)).
    shape: (B, 10) SMPL betas.
    """

    theta: torch.Tensor
    camera: torch.Tensor
    pose: torch.Tensor
    shape: torch.Tensor

    @staticmethod
    def from_theta(theta: torch.Tensor) -> HmrOutput:
        """Split a (B, 85) θ into its parts."""
        check_shape("theta", theta, (None, THETA_DIM))
        return HmrOutput(
            theta=theta,
            camera=theta[:, CAMERA_SLICE],
            pose=theta[:, POSE_SLICE].reshape(-1, NUM_JOINTS, 3),
            shape=theta[:, SHAPE_SLICE],
        )


def default_mean_theta() -> torch.Tensor:
    """(85,) the θ a fresh model starts from: s = 0.9, global rotation (π, 0, 0), everything else 0."""
    theta = torch.zeros(THETA_DIM)
    theta[0] = 0.9
    theta[POSE_SLICE.start] = math.pi
    return theta


class PreActivationBottleneck(nn.Module):
    """One pre-activation bottleneck unit (TF-slim resnet_v2 `bottleneck`).

    Input (B, in_channels, H, W) -> output (B, 4 planes, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * EXPANSION
        self.stride = stride
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=True)
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=True))
        else:
            self.shortcut = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        preactivation = F.relu(self.bn1(inputs))
        if self.shortcut is not None:
            identity = self.shortcut(preactivation)
        else:  # TF-slim's subsample: a 1x1 max-pool with the unit's stride = every stride-th pixel
            identity = inputs[:, :, :: self.stride, :: self.stride]
        residual = F.relu(self.bn2(self.conv1(preactivation)))
        residual = F.relu(self.bn3(self.conv2(residual)))
        residual = self.conv3(residual)
        return identity + residual


class PreActivationResNet50(nn.Module):
    """Pre-activation ResNet-50 v2 backbone: (B, 3, 224, 224) in [-1, 1] -> (B, 2048) average-pooled features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=True)
        in_channels = 64
        for index, (planes, units, stride) in enumerate(zip(LAYER_PLANES, LAYER_UNITS, LAYER_STRIDES), start=1):
            blocks = []
            for unit in range(units):
                unit_stride = stride if unit == units - 1 else 1
                blocks.append(PreActivationBottleneck(in_channels, planes, unit_stride))
                in_channels = planes * EXPANSION
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.post_bn = nn.BatchNorm2d(FEATURE_DIM)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 2048, H / 32, W / 32) after post_bn + ReLU (7 x 7 for a 224 input)."""
        features = self.conv1(images)
        features = F.max_pool2d(features, kernel_size=3, stride=2, ceil_mode=True)
        features = self.layer1(features)
        features = self.layer2(features)
        features = self.layer3(features)
        features = self.layer4(features)
        return F.relu(self.post_bn(features))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feature_map = self.feature_map(images)
        return F.avg_pool2d(feature_map, kernel_size=7).flatten(1)


class ThetaRegressor(nn.Module):
    """Iterative error feedback: θ_0 = mean_theta, θ_{k+1} = θ_k + MLP([features, θ_k]), `iterations` times.

    (B, 2048) features -> (B, 85) θ.
    """

    def __init__(self, iterations: int = 3) -> None:
        super().__init__()
        self.iterations = iterations
        self.register_buffer("mean_theta", default_mean_theta())
        final = nn.Linear(1024, THETA_DIM)
        nn.init.xavier_normal_(final.weight, gain=0.1)  # HMR's small initial update
        nn.init.zeros_(final.bias)
        self.fc_blocks = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(FEATURE_DIM + THETA_DIM, 1024)),
            ("relu1", nn.ReLU()),
            ("dropout1", nn.Dropout(0.5)),
            ("fc2", nn.Linear(1024, 1024)),
            ("relu2", nn.ReLU()),
            ("dropout2", nn.Dropout(0.5)),
            ("fc3", final),
        ]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        theta = self.mean_theta.to(features.dtype).expand(features.shape[0], -1)
        for _ in range(self.iterations):
            theta = theta + self.fc_blocks(torch.cat([features, theta], dim=1))
        return theta


class HMR(nn.Module):
    """The HMR regressor of the original code: person crop -> SMPL pose, shape and crop camera.

    Pairs with lwgan.body.smpl_body.SmplBody (HMR predicts SMPL parameters). Load the released
    weights with lwgan.recovery.hmr_loader.load_hmr; run image crops through
    lwgan.recovery.hmr_loader.hmr_initial_fit.
    """

    def __init__(self, iterations: int = 3) -> None:
        super().__init__()
        self.resnet = PreActivationResNet50()
        self.regressor = ThetaRegressor(iterations)

    def forward(self, images: torch.Tensor) -> HmrOutput:
        """images: (B, 3, 224, 224) float RGB in [-1, 1], a person-centred square crop each.

        Returns HmrOutput with theta (B, 85), camera (B, 3) in crop NDC, pose (B, 24, 3), shape (B, 10).
        """
        check_shape("images", images, (None, 3, INPUT_SIZE, INPUT_SIZE))
        return HmrOutput.from_theta(self.regressor(self.resnet(images)))
