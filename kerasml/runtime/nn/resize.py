"""NeuralNetwork layers that resample or cut the last two (H, W) axes: `upsample`, `resizeBilinear`,
`cropResize` and `crop`. Sampling grids follow NeuralNetwork.proto's formulas (see
`kernels.sample_grid`); blobs keep the runtime's leading axis of independent predictions."""

from __future__ import annotations

import math

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.nn.common import Run, border, pair, unsupported
from kerasml.runtime.registry import NN_LAYERS

# UpsampleLayerParams.LinearUpsampleMode: DEFAULT's spacing (Xin - Xin/Xout) / (Xout - 1) is
# i * Xin / Xout, the asymmetric grid (TensorFlow 1's align_corners=False without half pixels).
UPSAMPLE_GRIDS = {0: "asymmetric", 1: "align_corners", 2: "half_pixel"}
# SamplingMode.Method: STRICT_ALIGN_ENDPOINTS, ALIGN_ENDPOINTS, UPSAMPLE, ROI_ALIGN.
SAMPLING_GRIDS = {0: "align_corners", 1: "align_endpoints", 2: "asymmetric", 3: "roi_align"}


def _spatial(x: np.ndarray, what: str) -> None:
    if x.ndim < 4:  # the leading axis of predictions plus rank >= 3
        raise ValueError(f"{what} needs an input of rank 3 or more (C, H, W), got shape {x.shape[1:]}")


@NN_LAYERS.register("upsample")
def compile_upsample(layer, name: str) -> Run:
    p = layer.upsample
    fractional = [float(f) for f in p.fractionalScalingFactor]
    if fractional and list(p.scalingFactor):
        raise ValueError(f"layer '{name}' (upsample) sets both integer and fractional scaling factors")
    if fractional and len(fractional) != 2:
        raise ValueError(f"layer '{name}' (upsample): {len(fractional)} fractional factors, expected 2 (H, W)")
    factors = tuple(np.float32(f) for f in fractional) if fractional else pair(p.scalingFactor, 1)
    if min(factors) <= 0:
        raise ValueError(f"layer '{name}' (upsample): scaling factors {factors} must be positive")
    if p.mode not in (0, 1):
        raise unsupported(name, "upsample", f"interpolation mode {p.mode}")
    grid = UPSAMPLE_GRIDS.get(p.linearUpsampleMode)
    if p.mode == 1 and grid is None:
        raise unsupported(name, "upsample", f"linear upsample mode {p.linearUpsampleMode}")
    if fractional and (p.mode == 0 or p.linearUpsampleMode == 0):  # Core ML's validator rejects these too
        raise unsupported(
            name, "upsample", "fractional factors outside bilinear ALIGN_CORNERS_TRUE / ALIGN_CORNERS_FALSE"
        )

    def run(inputs):
        x = inputs[0]
        _spatial(x, "upsample")
        h, w = x.shape[-2:]
        if p.mode == 0:
            return [x.repeat(factors[0], axis=-2).repeat(factors[1], axis=-1)]
        # Output size floor(X * factor), the factor as stored (float32), as Core ML documents
        out = (int(math.floor(np.float32(h) * factors[0])), int(math.floor(np.float32(w) * factors[1])))
        if min(out) < 1:
            raise ValueError(f"scaling {h}x{w} by {factors} leaves nothing")
        return [kernels.resize_bilinear(x, out, grid)]

    return run


def _sampling(mode_msg, name: str, kind: str) -> str:
    grid = SAMPLING_GRIDS.get(mode_msg.samplingMethod)
    if grid is None:
        raise unsupported(name, kind, f"sampling method {mode_msg.samplingMethod}")
    return grid


@NN_LAYERS.register("resizeBilinear")
def compile_resizeBilinear(layer, name: str) -> Run:
    p = layer.resizeBilinear
    out = pair(p.targetSize, 1)
    grid = _sampling(p.mode, name, "resizeBilinear")

    def run(inputs):
        _spatial(inputs[0], "resizeBilinear")
        return [kernels.resize_bilinear(inputs[0], out, grid)]

    return run


def _corners(box: np.ndarray, mode: int) -> tuple[float, float, float, float]:
    """(h_start, w_start, h_end, w_end) from four coordinates in a BoxCoordinatesMode."""
    a, b, c, d = (float(v) for v in box)
    if mode == 0:
        return a, b, c, d
    if mode == 1:
        return b, a, d, c
    if mode == 2:
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2
    return b - d / 2, a - c / 2, b + d / 2, a + c / 2


@NN_LAYERS.register("cropResize")
def compile_cropResize(layer, name: str) -> Run:
    p = layer.cropResize
    out_h, out_w = pair(p.targetSize, 1)
    grid = _sampling(p.mode, name, "cropResize")
    box_mode = p.boxIndicesMode.boxMode
    if box_mode not in (0, 1, 2, 3):
        raise unsupported(name, "cropResize", f"box coordinate mode {box_mode}")
    if p.spatialScale == 0:  # unset: coremltools always writes it (1 by default)
        raise unsupported(name, "cropResize", "an unset (zero) spatial scale")
    scale = float(p.spatialScale)

    def crop_one(image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """image (B, C, H, W), box of 4 coordinates → (B, C, out_h, out_w)."""
        h, w = image.shape[-2:]
        h0, w0, h1, w1 = (v * scale for v in _corners(box, box_mode))
        if p.normalizedCoordinates:
            h0, h1, w0, w1 = h0 * (h - 1), h1 * (h - 1), w0 * (w - 1), w1 * (w - 1)
        rows = np.clip(kernels.box_grid(h0, h1, out_h, grid), 0, h - 1)
        cols = np.clip(kernels.box_grid(w0, w1, out_w, grid), 0, w - 1)
        return kernels.bilinear_sample(image, rows, cols)

    def run(inputs):
        x, rois = inputs
        if x.ndim != 6 or rois.ndim != 6 or rois.shape[-3] not in (4, 5):
            raise ValueError(
                f"expects a rank-5 image (1, B, C, H, W) and boxes (N, 1, 4 or 5, 1, 1), "
                f"got {x.shape[1:]} and {rois.shape[1:]}"
            )
        results = []
        for image, boxes in zip(x, rois):  # one prediction at a time
            boxes = boxes.reshape(boxes.shape[0], -1)
            if boxes.shape[1] == 4:
                results.append(np.stack([crop_one(image[0], box) for box in boxes]))
                continue
            crops = []
            for box in boxes:
                batch = int(box[0])
                if not 0 <= batch < image.shape[1]:
                    raise ValueError(f"box batch index {batch} is outside 0..{image.shape[1] - 1}")
                crops.append(crop_one(image[0, batch : batch + 1], box[1:]))
            results.append(np.stack(crops))
        return [np.stack(results)]

    return run


@NN_LAYERS.register("crop")
def compile_crop(layer, name: str) -> Run:
    p = layer.crop
    if len(layer.input) == 2:
        offset = pair(p.offset, 0)

        def run_to_reference(inputs):
            x, ref = inputs
            _spatial(x, "crop")
            oh, ow = ref.shape[-2:]
            if offset[0] + oh > x.shape[-2] or offset[1] + ow > x.shape[-1]:
                raise ValueError(f"a {oh}x{ow} crop at offset {offset} does not fit {x.shape[-2:]}")
            return [x[..., offset[0] : offset[0] + oh, offset[1] : offset[1] + ow]]

        return run_to_reference
    top, bottom, left, right = border(p.cropAmounts, name)

    def run(inputs):
        x = inputs[0]
        _spatial(x, "crop")
        h, w = x.shape[-2:]
        if top + bottom >= h or left + right >= w:
            raise ValueError(f"cropping {top + bottom}x{left + right} leaves nothing of {h}x{w}")
        return [x[..., top : h - bottom, left : w - right]]

    return run
