import Foundation

/// What the user drew on the square canvas, in the canvas's own coordinates (points).
///
/// The screen shows strokes a fixed 1/15 of the canvas side wide. The model gets the same strokes
/// rasterised at 280x280 with a width proportional to the drawing's extent (1/6 of it, at least
/// 2 px), so after fitting into MNIST's 20x20 box they are MNIST's 2-3 px whether the digit filled
/// the canvas or sat small in a corner (a fixed width would make a small digit a blob and a large
/// one a hairline). These numbers are the app contract's `drawing` section, which the Python
/// fixtures are drawn with; DigitKit's tests check the two agree.
public struct Sketch: Equatable, Sendable {
    public static let rasterSide = 280
    public static let strokeDivisor = 6
    public static let minimumStroke = 2.0
    /// Stroke width on screen, as a fraction of the canvas side.
    public static let lineWidthFraction = 1.0 / 15.0

    public private(set) var strokes: [[CanvasPoint]] = []
    /// Side of the square canvas, in the same units as the points.
    public var canvasSide: Double

    public init(canvasSide: Double, strokes: [[CanvasPoint]] = []) {
        self.canvasSide = canvasSide
        self.strokes = strokes
    }

    public var isEmpty: Bool { strokes.isEmpty }

    /// Stroke width on screen, in canvas units.
    public var lineWidth: Double { canvasSide * Self.lineWidthFraction }

    public mutating func beginStroke(at point: CanvasPoint) { strokes.append([point]) }

    public mutating func extendStroke(to point: CanvasPoint) {
        guard !strokes.isEmpty else { return beginStroke(at: point) }
        if strokes[strokes.count - 1].last != point { strokes[strokes.count - 1].append(point) }
    }

    public mutating func clear() { strokes.removeAll() }

    /// The drawing as the 280x280 bitmap the model's input is made from, whatever the canvas size.
    public func rasterized() -> GrayImage {
        let side = Double(Self.rasterSide)
        let scale = canvasSide > 0 ? side / canvasSide : 1
        let scaled = strokes.map { $0.map { CanvasPoint(x: $0.x * scale, y: $0.y * scale) } }
        return StrokeRasterizer.rasterize(scaled, width: Self.rasterSide, height: Self.rasterSide,
                                          lineWidth: Self.modelStrokeWidth(scaled))
    }

    /// 1/6 of the longer side of the points' bounding box, at least 2 px (`kerasml.preprocess.model_stroke_width`).
    static func modelStrokeWidth(_ strokes: [[CanvasPoint]]) -> Double {
        let points = strokes.joined()
        guard let first = points.first else { return minimumStroke }
        var minX = first.x, maxX = first.x, minY = first.y, maxY = first.y
        for p in points {
            minX = min(minX, p.x); maxX = max(maxX, p.x)
            minY = min(minY, p.y); maxY = max(maxY, p.y)
        }
        return max(max(maxX - minX, maxY - minY) / Double(strokeDivisor), minimumStroke)
    }

    /// What the model sees: the drawing prepared like an MNIST digit, 28x28.
    public func prepared() -> GrayImage { MNISTNormalizer.normalize(rasterized()) }
}
