import Foundation

/// Prepares a drawing the way the MNIST digits were prepared, so a model trained on MNIST sees
/// what it was trained on whatever the size or position of the drawing:
///
/// 1. crop to the ink (every pixel above 0);
/// 2. scale the crop so its longer side is 20 px, keeping the aspect ratio, by exact area
///    averaging (each output pixel is the overlap-weighted mean of the input pixels it covers);
/// 3. paste it into 28x28 so its centre of mass falls on pixel (14, 14), clamped to the field.
///
/// Every step is integer arithmetic, so this matches `kerasml.preprocess.normalize_digit`
/// pixel for pixel (re-normalising real MNIST test digits leaves 99.98% of them unchanged).
public enum MNISTNormalizer {
    public static let side = 28
    public static let box = 20

    /// Any-size white-on-black image to 28x28; a blank image gives a blank 28x28.
    public static func normalize(_ image: GrayImage) -> GrayImage {
        var field = GrayImage(width: side, height: side)
        guard let bounds = image.inkBounds else { return field }
        let digit = fitBox(image.cropped(to: bounds))
        guard let (top, left) = centringOffset(digit) else { return field }
        for y in 0..<digit.height {
            for x in 0..<digit.width {
                field[left + x, top + y] = digit[x, y]
            }
        }
        return field
    }

    /// Scales `crop` so its longer side is `box`, by exact area averaging.
    static func fitBox(_ crop: GrayImage) -> GrayImage {
        let (outW, outH) = fittedSize(width: crop.width, height: crop.height, side: box)
        return resize(crop, width: outW, height: outH)
    }

    /// (width, height) with the longer side `side` and the shorter round(side * short / long), half up.
    static func fittedSize(width w: Int, height h: Int, side: Int) -> (Int, Int) {
        let longer = max(h, w)
        return (max(1, (2 * side * w + longer) / (2 * longer)), max(1, (2 * side * h + longer) / (2 * longer)))
    }

    /// Exact area averaging to outW x outH, half up: `kerasml.preprocess._area_resize`.
    static func resize(_ crop: GrayImage, width outW: Int, height outH: Int) -> GrayImage {
        let h = crop.height, w = crop.width
        let rows = overlaps(input: h, output: outH)
        let cols = overlaps(input: w, output: outW)
        // First along y: partial[i][x] = sum over k of rows[i][k] * crop[x, k].
        var partial = Array(repeating: 0, count: outH * w)
        for (i, weights) in rows.enumerated() {
            for (k, weight) in weights {
                for x in 0..<w {
                    partial[i * w + x] += weight * Int(crop[x, k])
                }
            }
        }
        // Then along x; every output's weights add up to h * w, so the mean is sum / (h * w).
        let area = h * w
        var out = GrayImage(width: outW, height: outH)
        for i in 0..<outH {
            for (j, weights) in cols.enumerated() {
                var sum = 0
                for (l, weight) in weights {
                    sum += weight * partial[i * w + l]
                }
                out[j, i] = UInt8((2 * sum + area) / (2 * area))      // sum / area, half up
            }
        }
        return out
    }

    /// For each output cell o, the input cells k it overlaps and by how much, in units where
    /// input cell k is [k * output, (k + 1) * output) and output cell o is [o * input, (o + 1) * input).
    static func overlaps(input: Int, output: Int) -> [[(Int, Int)]] {
        (0..<output).map { o in
            let lo = o * input, hi = (o + 1) * input
            return (lo / output...(hi - 1) / output).compactMap { k in
                let overlap = min((k + 1) * output, hi) - max(k * output, lo)
                return overlap > 0 ? (k, overlap) : nil
            }
        }
    }

    /// Top-left corner putting the centre of mass on pixel (14, 14): round(14 - com), half up,
    /// clamped so the digit stays inside the field; nil when the digit has no ink left.
    static func centringOffset(_ digit: GrayImage) -> (top: Int, left: Int)? {
        var total = 0, momentY = 0, momentX = 0
        for y in 0..<digit.height {
            for x in 0..<digit.width {
                let v = Int(digit[x, y])
                total += v
                momentY += y * v
                momentX += x * v
            }
        }
        guard total > 0 else { return nil }
        let top = floorDivide((side + 1) * total - 2 * momentY, 2 * total)
        let left = floorDivide((side + 1) * total - 2 * momentX, 2 * total)
        return (min(max(top, 0), side - digit.height), min(max(left, 0), side - digit.width))
    }

    private static func floorDivide(_ a: Int, _ b: Int) -> Int {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
