"""MMOCR's ``TPSPreprocessor``: RARE's thin-plate-spline rectification (CRNN with TPS).

A small CNN (``LocalizationNetwork``) predicts ``F`` fiducial points ``C'`` on the input; the
``GridGenerator`` maps the fixed points ``C`` of the rectified image onto them with a thin-plate
spline, ``P' = P_hat @ (inv_delta_C @ [C'; 0])``, and the input is sampled at ``P'`` (bilinear,
border padding, corners aligned). ``inv_delta_C`` and ``P_hat`` are buffers computed from
``num_fiducial`` and ``rectified_img_size`` in float64, then stored as float32, as MMOCR does;
a checkpoint's copies replace them on load (the rectification is sensitive to them: rounding
them to fp16 changes decoded text). Computed here, ``inv_delta_C`` is within ~2e-15 of MMOCR's
(LAPACK's last bits); ``P_hat`` is identical. The output is always ``rectified_img_size``.

``grid_sample`` multiplies the grid's float32 rounding by the image gradient times ``(W - 1) / 2``:
whatever changes the last bits before it (a batch of several images in the localization convs
and linear layers, other CPU kernels) moves rectified pixels by up to ~3e-4, and the CRNN's
scores by a few 1e-6 (the same text on the parity fixtures).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrserve.mmocr.models.builder import PREPROCESSORS

__all__ = ["GridGenerator", "LocalizationNetwork", "TPSPreprocessor"]


def _fiducial_points(num_fiducial: int, top_y: np.ndarray, bottom_y: np.ndarray) -> np.ndarray:
    """``num_fiducial x 2`` points: a top row then a bottom row, x evenly in [-1, 1], y given."""
    xs = np.linspace(-1.0, 1.0, int(num_fiducial / 2))
    return np.concatenate([np.stack([xs, top_y], axis=1), np.stack([xs, bottom_y], axis=1)])


class LocalizationNetwork(nn.Module):
    """Four conv-BN-ReLU blocks (64..512 channels, bias-free convs, three 2x2 max pools), global
    average pooling, then ``localization_fc1`` (512 -> 256, ReLU) and ``localization_fc2``
    (256 -> 2F): the fiducial points ``N x F x 2``."""

    def __init__(self, num_fiducial: int, num_img_channel: int) -> None:
        super().__init__()
        self.num_fiducial = num_fiducial
        self.num_img_channel = num_img_channel
        layers: list[nn.Module] = []
        c_in = num_img_channel
        for i, c_out in enumerate((64, 128, 256, 512)):
            layers += [
                nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
                nn.MaxPool2d(2, 2) if i < 3 else nn.AdaptiveAvgPool2d(1),
            ]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.localization_fc1 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(True))
        self.localization_fc2 = nn.Linear(256, num_fiducial * 2)
        # MMOCR's initialisation: zero weights; the bias: top row y 0 -> -1, bottom 1 -> 0.
        nn.init.zeros_(self.localization_fc2.weight)
        half = int(num_fiducial / 2)
        initial = _fiducial_points(
            num_fiducial, np.linspace(0.0, -1.0, half), np.linspace(1.0, 0.0, half)
        )
        with torch.no_grad():
            self.localization_fc2.bias.copy_(torch.from_numpy(initial).float().view(-1))

    def forward(self, batch_img: Tensor) -> Tensor:
        batch_size = batch_img.size(0)
        features = self.conv(batch_img).view(batch_size, -1)
        points = self.localization_fc2(self.localization_fc1(features))
        return points.view(batch_size, self.num_fiducial, 2)


class GridGenerator(nn.Module):
    """The thin-plate spline from the rectified image's fiducial points ``C`` to predicted ones,
    evaluated at every pixel centre ``P`` of the rectified image (``H_r * W_r x 2``)."""

    eps = 1e-6

    def __init__(self, num_fiducial: int, rectified_img_size: Sequence[int]) -> None:
        super().__init__()
        self.num_fiducial = num_fiducial
        self.rectified_img_height = int(rectified_img_size[0])
        self.rectified_img_width = int(rectified_img_size[1])
        half = int(num_fiducial / 2)
        points = _fiducial_points(num_fiducial, -np.ones(half), np.ones(half))
        pixels = self._pixel_centres(self.rectified_img_width, self.rectified_img_height)
        self.inv_delta_C: Tensor
        self.P_hat: Tensor
        self.register_buffer(
            "inv_delta_C", torch.tensor(self._inv_delta_c(points)).float()
        )  # F+3 x F+3
        self.register_buffer(
            "P_hat", torch.tensor(self._p_hat(points, pixels)).float()
        )  # H_r*W_r x F+3

    @staticmethod
    def _pixel_centres(width: int, height: int) -> np.ndarray:
        xs = (np.arange(-width, width, 2) + 1.0) / width
        ys = (np.arange(-height, height, 2) + 1.0) / height
        return np.stack(np.meshgrid(xs, ys), axis=2).reshape([-1, 2])

    @staticmethod
    def _inv_delta_c(points: np.ndarray) -> np.ndarray:
        """The inverse of the TPS system ``[[1, C, R(C)], [0, C^T], [0, 1^T]]``, with the radial
        basis ``r^2 log r`` of the pairwise distances (``r = 1`` on the diagonal, giving 0)."""
        count = points.shape[0]
        dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
        np.fill_diagonal(dist, 1)
        radial = (dist**2) * np.log(dist)
        delta = np.concatenate(
            [
                np.concatenate([np.ones((count, 1)), points, radial], axis=1),
                np.concatenate([np.zeros((2, 3)), points.T], axis=1),
                np.concatenate([np.zeros((1, 3)), np.ones((1, count))], axis=1),
            ],
            axis=0,
        )
        return np.linalg.inv(delta)

    def _p_hat(self, points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """``[1, P, r^2 log(r + eps)]`` per pixel, ``r`` its distance to each fiducial point."""
        dist = np.linalg.norm(pixels[:, None, :] - points[None, :, :], ord=2, axis=2)
        radial = np.multiply(np.square(dist), np.log(dist + self.eps))
        return np.concatenate([np.ones((pixels.shape[0], 1)), pixels, radial], axis=1)

    def build_P_prime(self, batch_C_prime: Tensor) -> Tensor:  # noqa: N802 (MMOCR's name)
        """The sampling grid ``N x H_r*W_r x 2`` for predicted points ``N x F x 2``."""
        batch_size = batch_C_prime.size(0)
        inv_delta_c = self.inv_delta_C.repeat(batch_size, 1, 1)
        p_hat = self.P_hat.repeat(batch_size, 1, 1)
        with_zeros = torch.cat((batch_C_prime, batch_C_prime.new_zeros((batch_size, 3, 2))), 1)
        transform = torch.bmm(inv_delta_c, with_zeros)  # N x F+3 x 2
        return torch.bmm(p_hat, transform)


@PREPROCESSORS.register("TPSPreprocessor", ignore=("init_cfg",))
class TPSPreprocessor(nn.Module):
    """``LocalizationNetwork`` -> ``GridGenerator`` -> ``grid_sample``: ``N x C x H x W`` in,
    ``N x C x H_r x W_r`` out. ``img_size`` is kept for the config's sake; any input size works."""

    def __init__(
        self,
        num_fiducial: int = 20,
        img_size: Sequence[int] = (32, 100),
        rectified_img_size: Sequence[int] = (32, 100),
        num_img_channel: int = 1,
    ) -> None:
        super().__init__()
        self.num_fiducial = num_fiducial
        self.img_size = tuple(img_size)
        self.rectified_img_size = (int(rectified_img_size[0]), int(rectified_img_size[1]))
        self.num_img_channel = num_img_channel
        self.LocalizationNetwork = LocalizationNetwork(num_fiducial, num_img_channel)
        self.GridGenerator = GridGenerator(num_fiducial, self.rectified_img_size)

    def forward(self, batch_img: Tensor) -> Tensor:
        points = self.LocalizationNetwork(batch_img)
        grid = self.GridGenerator.build_P_prime(points)
        grid = grid.reshape([grid.size(0), *self.rectified_img_size, 2])
        return F.grid_sample(batch_img, grid, padding_mode="border", align_corners=True)
