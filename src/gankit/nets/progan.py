"""Progressive growing networks (Karras et al. 2018, table 2), every resolution built from the start.

G: z -> pixel norm -> dense to C(4) x 4 x 4 -> conv 3x3 (the 4x4 block); then per doubling: nearest
upsample, conv 3x3, conv 3x3; a 1x1 "toRGB" per resolution. D mirrors it: a 1x1 "fromRGB" per resolution,
then per halving: conv 3x3, conv 3x3 (to the next block's channels), 2x2 average pool; at 4x4 the minibatch
standard deviation (one extra channel), conv 3x3, conv 4x4 (a dense layer over the 4x4 map), dense to one logit.
Leaky ReLU 0.2 after every layer but the outputs; pixel norm after every conv of G.

Channels: C(r) = min(width, width * 32 / r), the paper's table (512 up to 32x32, then halving to 16 at 1024)
with 512 scaled to ``model.width_g`` / ``model.width_d``; ``model.options.full_width_until`` moves the 32 (the
CPU-sized MNIST presets use 8, so that C(r) halves from 16x16 on). Equalised learning rate: weights are drawn
N(0, 1) and multiplied at run time by gain / sqrt(fan_in) (gain sqrt(2), 1 for toRGB).

The networks grow by a **stage** (0: 4x4, 1: 8x8, ...) and a fade weight **alpha** set by the `progressive`
mode (`set_growth`), kept as a buffer so that a checkpoint restores them. During a fade (alpha < 1) G's output
is ``lerp(upsample(toRGB_old(h_old)), toRGB_new(block_new(up(h_old))), alpha)`` and D's input path
``lerp(fromRGB_old(pool(x)), block_new(fromRGB_new(x)), alpha)``.

Images that are not a power of two (MNIST's 28x28) are grown to the next power of two (32) and padded by
the mode; ``G(z)`` returns images of the data's shape (grown to full size, upsampled from the current stage,
padding cropped), ``G(z, native=True)`` the current stage's own resolution, which is what training uses. D takes
either its current resolution or images of the data's shape, which it pads and pools itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import GankitError
from ._layers import activation


@dataclass
class ProganOptions:
    """``model.options`` of ``progan``."""

    start: int = 4                    # resolution of the first stage (a power of two, at least 4)
    full_width_until: int = 32        # channels are the width up to this resolution, then halve per doubling
    mbstd_group: int = 4              # D's minibatch standard deviation group size (0: no such layer)
    pixel_norm: bool = True           # G normalises each pixel's feature vector after every conv
    equalized: bool = True            # equalised learning rate (False: He-initialised ordinary layers)


def grown_size(image_shape: tuple) -> int:
    """The power of two the networks grow to: the image size, or the next power of two above it."""
    side = max(image_shape[1:])
    return 1 << (side - 1).bit_length()


def stage_channels(width: int, res: int, full: int = 32) -> int:
    """C(r) = min(width, width * full / r): the paper's table (full = 32) scaled to ``width``."""
    return max(1, min(width, width * full // res))


def resolutions(image_shape: tuple, start: int) -> list:
    top = grown_size(image_shape)
    if start < 4 or start & (start - 1) or start > top:
        raise GankitError(f"model.options.start={start} must be a power of two from 4 to the grown image size "
                          f"{top}")
    return [start << k for k in range((top // start).bit_length())]


def padding(image_shape: tuple) -> tuple:
    """(left, right, top, bottom) pixels that pad an image of ``image_shape`` to its grown square size."""
    top, (h, w) = grown_size(image_shape), image_shape[1:]
    return ((top - w) // 2, top - w - (top - w) // 2, (top - h) // 2, top - h - (top - h) // 2)


class _Eq(nn.Module):
    """A conv (``kernel`` > 0) or dense layer with weights N(0, 1) scaled at run time (equalised lr)."""

    def __init__(self, cin: int, cout: int, kernel: int, gain: float, equalized: bool, pad: int = 0):
        super().__init__()
        shape = (cout, cin, kernel, kernel) if kernel else (cout, cin)
        fan_in = cin * max(kernel, 1) ** 2
        std = gain / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.randn(shape) * (1.0 if equalized else std))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale, self.pad, self.kernel = (std if equalized else 1.0), pad, kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale if self.scale != 1.0 else self.weight
        if self.kernel:
            return F.conv2d(x, w, self.bias, padding=self.pad)
        return F.linear(x, w, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class _Grows(nn.Module):
    """The stage and fade weight: Python numbers for the forward pass, mirrored in a buffer for checkpoints."""

    def _init_growth(self, image_shape: tuple, start: int) -> None:
        self.image_shape, self.resolutions = tuple(image_shape), resolutions(image_shape, start)
        self.pad = padding(image_shape)
        self.register_buffer("growth", torch.tensor([0.0, 1.0]))  # (stage, alpha)
        self.stage, self.alpha = 0, 1.0
        self.register_load_state_dict_post_hook(lambda module, keys: module._sync_growth())

    def set_growth(self, stage: int, alpha: float) -> None:
        if not 0 <= stage < len(self.resolutions) or not 0.0 <= alpha <= 1.0:
            raise GankitError(f"stage {stage} / alpha {alpha} is outside this network's {len(self.resolutions)} "
                              f"stages")
        self.stage, self.alpha = int(stage), float(alpha)
        self.growth.copy_(torch.tensor([float(stage), float(alpha)]))

    def _sync_growth(self) -> None:
        stage, alpha = self.growth.tolist()
        self.stage, self.alpha = int(round(stage)), float(alpha)

    @property
    def resolution(self) -> int:
        return self.resolutions[self.stage]

    @property
    def fading(self) -> bool:
        return self.stage > 0 and self.alpha < 1.0


class _ConvAct(nn.Module):
    """conv 3x3 (or ``kernel``), activation, and in G pixel norm."""

    def __init__(self, cin: int, cout: int, eq: bool, act: str, norm: bool = False, kernel: int = 3):
        super().__init__()
        self.conv = _Eq(cin, cout, kernel, math.sqrt(2), eq, pad=1 if kernel == 3 else 0)
        self.act, self.norm = activation(act), norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv(x))
        return pixel_norm(h) if self.norm else h


class ProGenerator(_Grows):
    grows = True

    def __init__(self, z_dim: int, image_shape: tuple, width: int = 512, norm: str = "none",
                 act: str = "leaky_relu", start: int = 4, pixel_norm: bool = True, equalized: bool = True,
                 full_width_until: int = 32):
        super().__init__()
        _check_norm(norm, "norm_g")
        self._init_growth(image_shape, start)
        self.z_dim, self.norm_pixels = z_dim, pixel_norm
        c0, channels = stage_channels(width, start, full_width_until), image_shape[0]
        self.dense = _Eq(z_dim, c0 * start * start, 0, math.sqrt(2) / 4, equalized)  # the paper's 4x4 "conv"
        self.dense_act = activation(act)
        pn = pixel_norm
        self.blocks = nn.ModuleList([_ConvAct(c0, c0, equalized, act, pn)])
        for prev, res in zip(self.resolutions, self.resolutions[1:]):
            cin, cout = stage_channels(width, prev, full_width_until), stage_channels(width, res, full_width_until)
            self.blocks.append(nn.Sequential(_ConvAct(cin, cout, equalized, act, pn),
                                             _ConvAct(cout, cout, equalized, act, pn)))
        self.to_rgb = nn.ModuleList(_Eq(stage_channels(width, r, full_width_until), channels, 1, 1.0, equalized)
                                    for r in self.resolutions)
        self.start = start

    def native(self, z: torch.Tensor) -> torch.Tensor:
        """Images at the current stage's resolution (N, C, r, r), faded in when alpha < 1."""
        h = pixel_norm(z) if self.norm_pixels else z
        h = self.dense_act(self.dense(h).view(z.shape[0], -1, self.start, self.start))
        h = self.blocks[0](pixel_norm(h) if self.norm_pixels else h)
        old = None
        for k in range(1, self.stage + 1):
            if k == self.stage and self.alpha < 1.0:
                old = h
            h = self.blocks[k](F.interpolate(h, scale_factor=2, mode="nearest"))
        out = self.to_rgb[self.stage](h)
        if old is not None:
            low = F.interpolate(self.to_rgb[self.stage - 1](old), scale_factor=2, mode="nearest")
            out = torch.lerp(low, out, self.alpha)
        return out

    def forward(self, z: torch.Tensor, native: bool = False) -> torch.Tensor:
        out = self.native(z)
        if native:
            return out
        size = self.resolutions[-1]
        if out.shape[-1] != size:
            out = F.interpolate(out, scale_factor=size // out.shape[-1], mode="nearest")
        left, right, top, bottom = self.pad
        return out[:, :, top:size - bottom, left:size - right].clamp(-1, 1)


class MinibatchStd(nn.Module):
    """Appends one channel: the standard deviation of each feature over a group of images, averaged over
    features and pixels (group size ``group``, or the largest divisor of the batch below it)."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group, n)
        while n % g:
            g -= 1
        y = x.float().view(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (n / g,)
        y = y.to(x.dtype).view(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class ProDiscriminator(_Grows):
    grows = True

    def __init__(self, image_shape: tuple, width: int = 512, norm: str = "none", act: str = "leaky_relu",
                 start: int = 4, mbstd_group: int = 4, equalized: bool = True, full_width_until: int = 32):
        super().__init__()
        _check_norm(norm, "norm_d")
        if mbstd_group < 0:
            raise GankitError(f"model.options.mbstd_group={mbstd_group} must be 0 (off) or a group size")
        self._init_growth(image_shape, start)
        self.act = activation(act)
        self.from_rgb = nn.ModuleList(_Eq(image_shape[0], stage_channels(width, r, full_width_until), 1, math.sqrt(2),
                                          equalized) for r in self.resolutions)
        c0 = stage_channels(width, start, full_width_until)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else nn.Identity()
        last = [_ConvAct(c0 + (1 if mbstd_group else 0), c0, equalized, act),
                _ConvAct(c0, c0, equalized, act, kernel=start)]  # a conv over the whole start x start map
        self.blocks = nn.ModuleList([nn.Sequential(*last)])
        for prev, res in zip(self.resolutions, self.resolutions[1:]):
            cin, cout = stage_channels(width, res, full_width_until), stage_channels(width, prev, full_width_until)
            self.blocks.append(nn.Sequential(_ConvAct(cin, cin, equalized, act), _ConvAct(cin, cout, equalized, act),
                                             nn.AvgPool2d(2)))
        self.head = _Eq(c0, 1, 0, 1.0, equalized)

    def _to_native(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resolution
        if x.shape[-1] == r and x.shape[-2] == r:
            return x
        if tuple(x.shape[1:]) == self.image_shape:
            x = F.pad(x, self.pad, value=-1.0)
        if x.shape[-1] != self.resolutions[-1] or x.shape[-2] != x.shape[-1]:
            raise GankitError(f"D at {r}x{r} got images of shape {tuple(x.shape[1:])}; give it {r}x{r} images or "
                              f"images of the data's shape {self.image_shape}")
        return F.avg_pool2d(x, x.shape[-1] // r)

    @property
    def feature_dim(self) -> int:
        return self.head.weight.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C(start)): the input of the last dense layer (a projection D's phi)."""
        x = self._to_native(x)
        s = self.stage
        h = self.act(self.from_rgb[s](x))
        for k in range(s, 0, -1):
            h = self.blocks[k](h)
            if k == s and self.alpha < 1.0:
                low = self.act(self.from_rgb[s - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(low, h, self.alpha)
        return self.blocks[0](self.mbstd(h)).flatten(1)


def _check_norm(norm: str, key: str) -> None:
    if norm != "none":
        raise GankitError(f"model.arch=progan has its own normalisation (pixel norm in G, none in D); set "
                          f"model.{key}=none (model.options.pixel_norm switches G's)")
