"""ML Program image resizing: upsample_*, resize_*, resize (iOS 17), crop and crop_resize.

Sampling positions come from `kernels.sample_grid`/`box_grid` (shared with the NeuralNetwork
layers). MIL's sampling modes (ops/defs/iOS15/image_resizing.py, resize_bilinear's notes) map onto
the grids: STRICT_ALIGN_CORNERS = align_corners, ALIGN_CORNERS = align_endpoints (one output sits
in the middle), DEFAULT = asymmetric (i * Xin / Xout), OFFSET_CORNERS = roi_align and
UNALIGN_CORNERS = half_pixel. Nearest-neighbour resizing reads floor(i * Xin / Xout), except in
iOS 17's `resize`, which reads the pixel under each output pixel's centre.
"""

from __future__ import annotations

import numpy as np

from kerasml.runtime import kernels
from kerasml.runtime.mil.args import Args
from kerasml.runtime.mil.per_prediction import per_prediction
from kerasml.runtime.registry import CONST, IOS16, IOS17, MIL_OPS, OPTIONAL, OPTIONAL_CONST, TENSOR, InputSpec

SAMPLING_MODES = {
    "STRICT_ALIGN_CORNERS": "align_corners",
    "ALIGN_CORNERS": "align_endpoints",
    "DEFAULT": "asymmetric",
    "OFFSET_CORNERS": "roi_align",
    "UNALIGN_CORNERS": "half_pixel",
}


def _mode(args: Args) -> str:
    mode = str(args.scalar("sampling_mode", "DEFAULT"))
    if mode not in SAMPLING_MODES:
        raise args.unsupported(f"sampling_mode '{mode}'")
    return SAMPLING_MODES[mode]


def _scaled(args: Args, x: np.ndarray) -> tuple[int, int]:
    fh, fw = float(args.scalar("scale_factor_height", 1)), float(args.scalar("scale_factor_width", 1))
    return int(np.floor(x.shape[-2] * fh)), int(np.floor(x.shape[-1] * fw))


@MIL_OPS.register("upsample_nearest_neighbor",
                  inputs=InputSpec(x=TENSOR, scale_factor_height=OPTIONAL_CONST, scale_factor_width=OPTIONAL_CONST))
def upsample_nearest_neighbor(args: Args) -> list:
    x = np.asarray(args.get("x"))
    return [kernels.resize_nearest(x, _scaled(args, x))]


@MIL_OPS.register("resize_nearest_neighbor", inputs=InputSpec(x=TENSOR, target_size_height=CONST, target_size_width=CONST))
def resize_nearest_neighbor(args: Args) -> list:
    x = np.asarray(args.get("x"))
    size = (int(args.scalar("target_size_height")), int(args.scalar("target_size_width")))
    return [kernels.resize_nearest(x, size)]


UPSAMPLE_BILINEAR = InputSpec(x=TENSOR, scale_factor_height=OPTIONAL_CONST, scale_factor_width=OPTIONAL_CONST,
                              align_corners=OPTIONAL_CONST)


@MIL_OPS.register("upsample_bilinear", inputs=UPSAMPLE_BILINEAR)
def upsample_bilinear(args: Args) -> list:
    """iOS 15: the corners aligned, or else half-pixel centres."""
    x = np.asarray(args.f32("x"))
    mode = "align_corners" if bool(args.scalar("align_corners", True)) else "half_pixel"
    return [kernels.resize_bilinear(x, _scaled(args, x), mode)]


@MIL_OPS.register("upsample_bilinear", opset=IOS16, inputs=UPSAMPLE_BILINEAR.but(half_pixel_centers=OPTIONAL_CONST))
def upsample_bilinear_ios16(args: Args) -> list:
    """iOS 16 adds `half_pixel_centers` (default: not align_corners); neither gives the asymmetric grid."""
    x = np.asarray(args.f32("x"))
    align = bool(args.scalar("align_corners", True))
    half = bool(args.scalar("half_pixel_centers", not align))
    if align and half:
        raise args.unsupported("align_corners together with half_pixel_centers")
    mode = "align_corners" if align else ("half_pixel" if half else "asymmetric")
    return [kernels.resize_bilinear(x, _scaled(args, x), mode)]


@MIL_OPS.register("resize_bilinear", inputs=InputSpec(x=TENSOR, target_size_height=OPTIONAL_CONST,
                                                      target_size_width=OPTIONAL_CONST, sampling_mode=OPTIONAL_CONST))
def resize_bilinear(args: Args) -> list:
    x = np.asarray(args.f32("x"))
    size = (int(args.scalar("target_size_height", 1)), int(args.scalar("target_size_width", 1)))
    return [kernels.resize_bilinear(x, size, _mode(args))]


@MIL_OPS.register("resize", opset=IOS17, inputs=InputSpec(x=TENSOR, shape=TENSOR, resized_dims=CONST,
                                                          interpolation_mode=OPTIONAL_CONST, sampling_mode=OPTIONAL_CONST))
@per_prediction
def resize(args: Args) -> list:
    """iOS 17: the last `resized_dims` axes take their sizes from the tail of `shape` (0 keeps x's)."""
    x = np.asarray(args.f32("x"))
    shape, dims = args.ints("shape"), int(args.scalar("resized_dims"))
    if dims > 2:
        raise args.unsupported(f"resizing {dims} axes (only the last two are implemented)")
    target = list(x.shape)
    for i in range(1, dims + 1):
        if shape[-i] != 0:
            target[-i] = shape[-i]
    mode = str(args.scalar("interpolation_mode", "LINEAR"))
    x4 = x.reshape((1,) * max(0, 2 - x.ndim) + x.shape)
    out = tuple(target[-2:]) if x.ndim >= 2 else (1, target[-1])
    if mode == "NEAREST_NEIGHBOR":
        if args.scalar("sampling_mode", "DEFAULT") not in ("DEFAULT",):
            raise args.unsupported(f"nearest-neighbour resizing with sampling_mode '{args.scalar('sampling_mode')}'")
        # Core ML reads the pixel under each output pixel's centre here: 2 -> 3 rows gives 0, 1, 1
        # (coremltools' iOS 17 resize test), not resize_nearest_neighbor's floor(i * Xin / Xout)
        y = kernels.resize_nearest(x4, out, half_pixel=True)
    elif mode == "LINEAR":
        y = kernels.resize_bilinear(x4, out, _mode(args))
    else:
        raise args.unsupported(f"interpolation_mode '{mode}'")
    return [y.reshape(target)]


@MIL_OPS.register("crop", inputs=InputSpec(x=TENSOR, crop_height=CONST, crop_width=CONST))
def crop(args: Args) -> list:
    x = np.asarray(args.get("x"))
    (top, bottom), (left, right) = args.ints("crop_height"), args.ints("crop_width")
    return [x[..., top : x.shape[-2] - bottom, left : x.shape[-1] - right]]


def _sample_padded(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, pad: float) -> np.ndarray:
    """Bilinear samples of image (C, H, W); positions outside [0, H - 1] x [0, W - 1] read `pad`."""
    h, w = image.shape[-2:]
    out = kernels.bilinear_sample(image, np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1))
    outside = ((rows < 0) | (rows > h - 1))[:, None] | ((cols < 0) | (cols > w - 1))[None, :]
    return np.where(outside, np.float32(pad), out)


def _box(args: Args, coords: np.ndarray, h: int, w: int) -> tuple[float, float, float, float]:
    """(h_start, h_end, w_start, w_end) in pixels."""
    mode = str(args.scalar("box_coordinate_mode", "CORNERS_HEIGHT_FIRST"))
    a, b, c, d = (float(v) for v in coords)
    if mode == "CORNERS_HEIGHT_FIRST":
        box = (a, c, b, d)
    elif mode == "CORNERS_WIDTH_FIRST":
        box = (b, d, a, c)
    elif mode == "CENTER_SIZE_HEIGHT_FIRST":
        box = (a - c / 2, a + c / 2, b - d / 2, b + d / 2)
    elif mode == "CENTER_SIZE_WIDTH_FIRST":
        box = (b - d / 2, b + d / 2, a - c / 2, a + c / 2)
    else:
        raise args.unsupported(f"box_coordinate_mode '{mode}'")
    if args.scalar("normalized_coordinates", False):
        box = (box[0] * (h - 1), box[1] * (h - 1), box[2] * (w - 1), box[3] * (w - 1))
    scale = float(args.scalar("spatial_scale", 1.0))
    return tuple(v * scale for v in box)


CROP_RESIZE = InputSpec(x=TENSOR, roi=TENSOR, target_height=OPTIONAL_CONST, target_width=OPTIONAL_CONST,
                        normalized_coordinates=OPTIONAL_CONST, spatial_scale=OPTIONAL_CONST,
                        box_coordinate_mode=OPTIONAL_CONST, sampling_mode=OPTIONAL_CONST)


@MIL_OPS.register("crop_resize", inputs=CROP_RESIZE)
@MIL_OPS.register("crop_resize", opset=IOS16, inputs=CROP_RESIZE.but(pad_value=OPTIONAL_CONST))
@per_prediction
def crop_resize(args: Args) -> list:
    """iOS 15-16: each region of `roi` holds 5 values (the image's index, then the box) or 4 (a box
    cropped from every image)."""
    x = np.asarray(args.f32("x"))
    th, tw = int(args.scalar("target_height", 1)), int(args.scalar("target_width", 1))
    mode, pad = _mode(args), float(args.scalar("pad_value", 0.0))
    roi = np.asarray(args.f32("roi")).reshape(len(args.get("roi")), -1)
    if roi.shape[1] == 5:
        return [np.stack([_crop(args, x[int(r[0])], r[1:], th, tw, mode, pad)[None] for r in roi])]
    return [np.stack([np.stack([_crop(args, x[i], r, th, tw, mode, pad) for i in range(len(x))]) for r in roi])]


@MIL_OPS.register("crop_resize", opset=IOS17,
                  inputs=CROP_RESIZE.but(roi=None, boxes=TENSOR, box_indices=OPTIONAL, pad_value=OPTIONAL_CONST))
@per_prediction
def crop_resize_ios17(args: Args) -> list:
    """iOS 17: boxes (N, 4) on the images box_indices names (by default box i on image i), output
    (N, C, th, tw)."""
    x = np.asarray(args.f32("x"))
    th, tw = int(args.scalar("target_height", 1)), int(args.scalar("target_width", 1))
    mode, pad = _mode(args), float(args.scalar("pad_value", 0.0))
    boxes = np.asarray(args.f32("boxes")).reshape(-1, 4)
    indices = args.ints("box_indices", None) or list(range(len(boxes)))
    return [np.stack([_crop(args, x[int(i)], b, th, tw, mode, pad) for i, b in zip(indices, boxes)])]


def _crop(args, image, coords, th, tw, mode, pad) -> np.ndarray:
    h0, h1, w0, w1 = _box(args, coords, image.shape[-2], image.shape[-1])
    if mode not in ("align_corners", "align_endpoints", "asymmetric", "roi_align"):
        raise args.unsupported(f"crop_resize with sampling mode {args.scalar('sampling_mode')}")
    rows, cols = kernels.box_grid(h0, h1, th, mode), kernels.box_grid(w0, w1, tw, mode)
    return _sample_padded(image, rows, cols, pad)


def _padded_index(i: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Where index i of an axis of length n reads from once the image is padded by `mode`, and
    whether it lies inside the image (constant padding reads the padding value elsewhere)."""
    inside = (i >= 0) & (i < n)
    if mode == "border":
        return np.clip(i, 0, n - 1), np.ones_like(inside)
    if mode == "reflection":  # |1 2 3| -> 2 3 2 1 2 3 2 1 2: the edge is not repeated
        period = max(2 * (n - 1), 1)
        m = np.mod(i, period)
        return np.where(m >= n, period - m, m), np.ones_like(inside)
    if mode == "symmetric":  # |1 2 3| -> 3 2 1 1 2 3 3 2 1: the edge is repeated
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m), np.ones_like(inside)
    return np.clip(i, 0, n - 1), inside


def _pixels(c: np.ndarray, n: int, mode: str, align: bool) -> np.ndarray:
    if mode == "unnormalized":
        return c
    if mode == "normalized_minus_one_to_one":
        return (c + 1) / 2 * (n - 1) if align else ((c + 1) * n - 1) / 2
    if mode == "normalized_zero_to_one":
        return c * (n - 1) if align else c * n - 0.5
    raise ValueError(f"coordinates_mode {mode!r}")


@MIL_OPS.register("resample", inputs=InputSpec(x=TENSOR, coordinates=TENSOR, sampling_mode=CONST, padding_mode=CONST,
                                                padding_value=CONST, coordinates_mode=CONST, align_corners=CONST))
@per_prediction
def resample(args: Args) -> list:
    """Samples x (B, C, H, W) at coordinates (B, H2, W2, 2) given as (x, y), reading past the edges
    through the padding mode (coremltools' iOS15 image_resizing.resample definition)."""
    x = np.asarray(args.f32("x"), np.float32)
    coords = np.asarray(args.get("coordinates"), np.float64)
    sampling, padding = str(args.scalar("sampling_mode")), str(args.scalar("padding_mode"))
    coord_mode, align = str(args.scalar("coordinates_mode")), bool(args.scalar("align_corners"))
    if sampling not in ("bilinear", "nearest") or padding not in ("constant", "border", "reflection", "symmetric"):
        raise args.unsupported(f"sampling_mode '{sampling}' with padding_mode '{padding}'")
    if coord_mode not in ("unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one"):
        raise args.unsupported(f"coordinates_mode '{coord_mode}'")
    h, w = x.shape[-2:]
    px, py = _pixels(coords[..., 0], w, coord_mode, align), _pixels(coords[..., 1], h, coord_mode, align)
    fill = np.float32(args.scalar("padding_value", 0.0))
    batch = np.arange(x.shape[0])[:, None, None]

    def tap(rows, cols):  # (B, H2, W2) integer taps -> (B, C, H2, W2)
        r, r_in = _padded_index(rows, h, padding)
        c, c_in = _padded_index(cols, w, padding)
        values = x[batch, :, r, c]  # (B, H2, W2, C)
        return np.where((r_in & c_in)[..., None], values, fill).transpose(0, 3, 1, 2)

    if sampling == "nearest":  # halves round up: 2.5 reads pixel 3 (coremltools' test values)
        return [tap(np.floor(py + 0.5).astype(np.int64), np.floor(px + 0.5).astype(np.int64))]
    r0, c0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
    fy, fx = (py - r0)[:, None].astype(np.float32), (px - c0)[:, None].astype(np.float32)
    top = tap(r0, c0) * (1 - fx) + tap(r0, c0 + 1) * fx
    bottom = tap(r0 + 1, c0) * (1 - fx) + tap(r0 + 1, c0 + 1) * fx
    return [top * (1 - fy) + bottom * fy]
