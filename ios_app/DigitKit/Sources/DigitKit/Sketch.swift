import Foundation

/// What the user drew on the square canvas, in the canvas's own coordinates (points).
///
/// The screen shows strokes a fixed fraction of the canvas side wide. The model gets the same
/// strokes rasterised into a square bitmap with a width proportional to the drawing's extent (a
/// fraction of it, with a minimum), so after fitting into MNIST's 20x20 box they are MNIST's
/// 2-3 px whether the digit filled the canvas or sat small in a corner (a fixed width would make a
/// small digit a blob and a large one a hairline). These numbers are read from the app contract's
/// `drawing` section, which the sketch is made with and the Python fixtures are drawn with; Swift
/// keeps no copy of them.
public struct Sketch: Equatable, Sendable {
    public private(set) var strokes: [[CanvasPoint]] = []
    /// Side of the square canvas, in the same units as the points.
    public var canvasSide: Double
    /// The contract's `drawing` section: raster side, stroke widths.
    public let drawing: AppContract.Drawing

    public init(canvasSide: Double, strokes: [[CanvasPoint]] = [], drawing: AppContract.Drawing) {
        self.canvasSide = canvasSide
        self.strokes = strokes
        self.drawing = drawing
    }

    public var isEmpty: Bool { strokes.isEmpty }

    /// Stroke width on screen, as a fraction of the canvas side (1 / `screen_stroke_divisor`).
    public var lineWidthFraction: Double { 1.0 / Double(drawing.screenStrokeDivisor) }

    /// Stroke width on screen, in canvas units.
    public var lineWidth: Double { canvasSide * lineWidthFraction }

    public mutating func beginStroke(at point: CanvasPoint) { strokes.append([point]) }

    public mutating func extendStroke(to point: CanvasPoint) {
        guard !strokes.isEmpty else { return beginStroke(at: point) }
        if strokes[strokes.count - 1].last != point { strokes[strokes.count - 1].append(point) }
    }

    public mutating func clear() { strokes.removeAll() }

    /// The drawing as the contract's `raster_side` square bitmap the model's input is made from,
    /// whatever the canvas size.
    public func rasterized() -> GrayImage {
        let side = Double(drawing.rasterSide)
        let scale = canvasSide > 0 ? side / canvasSide : 1
        let scaled = strokes.map { $0.map { CanvasPoint(x: $0.x * scale, y: $0.y * scale) } }
        return StrokeRasterizer.rasterize(scaled, width: drawing.rasterSide, height: drawing.rasterSide,
                                          lineWidth: modelStrokeWidth(scaled))
    }

    /// 1/`stroke_divisor` of the longer side of the points' bounding box, at least `minimum_stroke`
    /// (`kerasml.preprocess.model_stroke_width`).
    func modelStrokeWidth(_ strokes: [[CanvasPoint]]) -> Double {
        let points = strokes.joined()
        guard let first = points.first else { return drawing.minimumStroke }
        var minX = first.x, maxX = first.x, minY = first.y, maxY = first.y
        for p in points {
            minX = min(minX, p.x); maxX = max(maxX, p.x)
            minY = min(minY, p.y); maxY = max(maxY, p.y)
        }
        return max(max(maxX - minX, maxY - minY) / Double(drawing.strokeDivisor), drawing.minimumStroke)
    }

    /// What the model sees: the drawing prepared like an MNIST digit, 28x28.
    public func prepared() -> GrayImage { MNISTNormalizer.normalize(rasterized()) }
}
