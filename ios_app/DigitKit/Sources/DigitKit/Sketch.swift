import Foundation

/// What the user drew on the square canvas, in the canvas's own coordinates (points).
///
/// The app shows strokes `lineWidth` wide (1/15 of the canvas side) and hands the model the same
/// strokes rasterised at 280x280 and normalised to 28x28, where they are 2-3 px wide like MNIST's.
public struct Sketch: Equatable, Sendable {
    public static let rasterSide = 280
    public static let lineWidthFraction = 1.0 / 15.0

    public private(set) var strokes: [[Point]] = []
    /// Side of the square canvas, in the same units as the points.
    public var canvasSide: Double

    public init(canvasSide: Double, strokes: [[Point]] = []) {
        self.canvasSide = canvasSide
        self.strokes = strokes
    }

    public var isEmpty: Bool { strokes.isEmpty }

    /// Stroke width on screen, in canvas units.
    public var lineWidth: Double { canvasSide * Self.lineWidthFraction }

    public mutating func beginStroke(at point: Point) { strokes.append([point]) }

    public mutating func extendStroke(to point: Point) {
        guard !strokes.isEmpty else { return beginStroke(at: point) }
        if strokes[strokes.count - 1].last != point { strokes[strokes.count - 1].append(point) }
    }

    public mutating func clear() { strokes.removeAll() }

    /// The drawing as a 280x280 bitmap, whatever the size of the canvas on screen.
    public func rasterized() -> GrayImage {
        let side = Double(Self.rasterSide)
        let scale = canvasSide > 0 ? side / canvasSide : 1
        let scaled = strokes.map { $0.map { Point(x: $0.x * scale, y: $0.y * scale) } }
        return StrokeRasterizer.rasterize(scaled, width: Self.rasterSide, height: Self.rasterSide,
                                          lineWidth: side * Self.lineWidthFraction)
    }

    /// What the model sees: the drawing prepared like an MNIST digit, 28x28.
    public func prepared() -> GrayImage { MNISTNormalizer.normalize(rasterized()) }
}
