"""Prepare a drawing or a photo of a digit the way the MNIST digits were prepared.

Drawings (drawing.py): `rasterize_sketch` (as the app rasterises its canvas) then `normalize_digit`. Photos of
digits on paper (photo.py): `prepare_photo` (grayscale, illumination, threshold, largest ink component, then
`normalize_digit`), documented at its definition.

MNIST's recipe (LeCun et al.): crop the ink, scale it to fit a 20x20 box keeping its aspect ratio,
with anti-aliasing, then place it in a 28x28 field so its centre of mass is at the centre. A demo
that squashes the whole canvas to 28x28 instead misreads small or off-centre digits.

The Swift package `ios_app/DigitKit` implements the same steps, and both sides are checked
against the same fixtures (`tests/fixtures/digits.json`), so every step below is defined in
integer arithmetic or in the same floating-point operations, in the same order, as the Swift code:

1. `rasterize_strokes`: a canvas pixel is ink (255) when its centre lies within `line_width / 2`
   of a stroke segment, otherwise 0 (bilevel, like the NIST originals).
2. `normalize_digit`: the ink is every pixel above 0. Its bounding box (h x w) is scaled so the
   longer side becomes 20 and the shorter `round(20 * short / long)` (at least 1), by exact area
   averaging: output pixel i covers the input interval [i * h / out_h, (i + 1) * h / out_h), and
   its value is the mean of the input weighted by overlap. All overlaps are integers once lengths
   are multiplied by out_h (or out_w), so each output is an exact fraction, rounded half up.
3. The scaled digit is pasted into 28x28 at the integer offset that brings its centre of mass
   (weights = grey levels, pixel i's centre at index i) nearest to pixel (14, 14), half up,
   clamped so the whole box stays inside the field.
"""

from kerasml.preprocess.drawing import (BOX, FIELD, model_stroke_width, normalize_digit,
                                        rasterize_sketch, rasterize_strokes)
from kerasml.preprocess.photo import PhotoPreparation, prepare_grayscale, prepare_photo
from kerasml.preprocess.picture import (decode_side, picture_grayscale, prepare_image, prepare_picture, prepare_raw,
                                        reads_digits)

__all__ = ["BOX", "FIELD", "PhotoPreparation", "decode_side", "model_stroke_width", "normalize_digit",
           "picture_grayscale", "prepare_grayscale", "prepare_image", "prepare_photo", "prepare_picture",
           "prepare_raw", "rasterize_sketch", "rasterize_strokes", "reads_digits"]
