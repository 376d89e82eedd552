import Foundation

/// A point on the drawing canvas, in canvas units (points or pixels), y pointing down. (Not `Point`:
/// MacTypes.h, which every Apple SDK imports, declares a C `struct Point`.)
public struct CanvasPoint: Equatable, Sendable, Codable {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }
}

/// Draws strokes as bilevel white ink on black, like the NIST scans MNIST was made from.
///
/// A pixel is ink (255) when its centre lies within `lineWidth / 2` of a stroke segment, so
/// strokes have round caps and joins and a one-point stroke is a dot. `kerasml.preprocess.
/// rasterize_strokes` does the same floating-point operations in the same order, so both give
/// the same pixels (checked by the shared fixtures in tests/fixtures/digits.json).
public enum StrokeRasterizer {
    public static func rasterize(_ strokes: [[CanvasPoint]], width: Int, height: Int,
                                 lineWidth: Double) -> GrayImage {
        var image = GrayImage(width: width, height: height)
        let radius = lineWidth / 2.0
        for stroke in strokes where !stroke.isEmpty {
            let points = stroke.count == 1 ? [stroke[0], stroke[0]] : stroke
            for (a, b) in zip(points, points.dropFirst()) {
                stamp(from: a, to: b, radius: radius, into: &image)
            }
        }
        return image
    }

    private static func stamp(from a: CanvasPoint, to b: CanvasPoint, radius: Double, into image: inout GrayImage) {
        // Only pixels near the segment can be ink: its bounding box grown by the radius.
        let x0 = max(Int((min(a.x, b.x) - radius).rounded(.down)) - 1, 0)
        let x1 = min(Int((max(a.x, b.x) + radius).rounded(.up)) + 1, image.width - 1)
        let y0 = max(Int((min(a.y, b.y) - radius).rounded(.down)) - 1, 0)
        let y1 = min(Int((max(a.y, b.y) + radius).rounded(.up)) + 1, image.height - 1)
        guard x0 <= x1, y0 <= y1 else { return }
        let dx = b.x - a.x
        let dy = b.y - a.y
        let length2 = dx * dx + dy * dy
        let limit = radius * radius
        for y in y0...y1 {
            let py = Double(y) + 0.5
            for x in x0...x1 {
                let px = Double(x) + 0.5
                var t = 0.0
                if length2 != 0 {
                    t = min(max(((px - a.x) * dx + (py - a.y) * dy) / length2, 0.0), 1.0)
                }
                let ex = px - (a.x + t * dx)
                let ey = py - (a.y + t * dy)
                if ex * ex + ey * ey <= limit {
                    image[x, y] = 255
                }
            }
        }
    }
}
