import XCTest
@testable import DigitKit

final class NormalizationTests: XCTestCase {
    func testBlankImageGivesBlankField() {
        let out = MNISTNormalizer.normalize(GrayImage(width: 100, height: 60))
        XCTAssertEqual(out, GrayImage(width: 28, height: 28))
    }

    func testLongerSideBecomesTwentyAndAspectIsKept() {
        let raster = StrokeRasterizer.rasterize([[CanvasPoint(x: 20, y: 100), CanvasPoint(x: 260, y: 100)]],
                                                width: 280, height: 280, lineWidth: 40)
        let bounds = MNISTNormalizer.normalize(raster).inkBounds
        XCTAssertEqual(bounds?.width, 20)
        XCTAssertEqual(bounds?.height, 3)          // 41 x 281 px of ink: round(20 * 41 / 281) = 3
    }

    func testPositionAndSizeOnTheCanvasDoNotMatter() throws {
        // Drawn as the app draws: a Sketch, whose model raster scales the stroke with the drawing.
        let seven = [CanvasPoint(x: 0, y: 0), CanvasPoint(x: 16, y: 0), CanvasPoint(x: 6, y: 19)]
        let drawing = try RepositoryFiles.drawing()
        func drawn(scale: Double, dx: Double, dy: Double) -> GrayImage {
            Sketch(canvasSide: 300, strokes: [seven.map { CanvasPoint(x: $0.x * scale + dx, y: $0.y * scale + dy) }],
                   drawing: drawing).prepared()
        }
        let big = drawn(scale: 12, dx: 30, dy: 20)
        let small = drawn(scale: 2, dx: 5, dy: 5)              // inside the top-left 15% of the canvas
        let difference = zip(big.pixels, small.pixels).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThan(Double(difference.reduce(0, +)) / Double(difference.count), 12,
                          "a small digit in a corner should look like a big one in the middle")
        XCTAssertEqual(small.inkBounds?.height, 20)
    }

    func testCentreOfMassLandsOnPixelFourteen() {
        var image = GrayImage(width: 50, height: 50)
        for y in 5..<30 { image[40, y] = 255; image[41, y] = 255 }
        let out = MNISTNormalizer.normalize(image)
        var total = 0.0, sx = 0.0, sy = 0.0
        for y in 0..<28 { for x in 0..<28 { let v = Double(out[x, y]); total += v; sx += Double(x) * v; sy += Double(y) * v } }
        XCTAssertEqual(sx / total, 14, accuracy: 0.5)
        XCTAssertEqual(sy / total, 14, accuracy: 0.5)
    }

    func testAreaAveragingIsExact() {
        // 40x40 of ink with one 2x2 black hole: halving maps the hole onto exactly one pixel.
        var image = GrayImage(width: 40, height: 40, pixels: Array(repeating: 200, count: 1600))
        image[10, 10] = 0; image[11, 10] = 0; image[10, 11] = 0; image[11, 11] = 0
        let fitted = MNISTNormalizer.fitBox(image)
        XCTAssertEqual(fitted.width, 20)
        XCTAssertEqual(fitted[5, 5], 0)
        XCTAssertEqual(fitted[6, 5], 200)
        // 3 -> 2 pixels: the middle input pixel is split half and half.
        let weights = MNISTNormalizer.overlaps(input: 3, output: 2)
        XCTAssertEqual(weights.map { $0.map { $0.1 } }, [[2, 1], [1, 2]])
        // A 3x1 row becomes 20x7 (round(20 / 3) = 7): upscaling repeats pixels, blending at edges.
        let row = MNISTNormalizer.fitBox(GrayImage(width: 3, height: 1, pixels: [255, 0, 90]))
        XCTAssertEqual([row.width, row.height], [20, 7])
        XCTAssertEqual((0..<20).map { Int(row[$0, 3]) },
                       [255, 255, 255, 255, 255, 255, 170, 0, 0, 0, 0, 0, 0, 60, 90, 90, 90, 90, 90, 90])
    }

    func testDigitStaysInsideTheFieldWhenMassIsLopsided() {
        var image = GrayImage(width: 20, height: 20)
        for y in 0..<20 { image[0, y] = 255 }
        for x in 0..<20 { image[x, 0] = 1 }            // faint top bar widens the box to 20x20
        let out = MNISTNormalizer.normalize(image)
        XCTAssertEqual(out.inkBounds, PixelRect(x: 8, y: 4, width: 20, height: 20))   // mass far left: clamped at 8
    }

    func testSketchScalesPointsToTheRaster() {
        // Numbers of the test's own, not the app's (AppContractTests checks the app reads its contract's):
        // a 70 px raster, model strokes 1/5 of the extent and at least 3 px, screen strokes 1/10 of the side.
        let drawing = AppContract.Drawing(rasterSide: 70, strokeDivisor: 5, minimumStroke: 3, screenStrokeDivisor: 10)
        var sketch = Sketch(canvasSide: 140, drawing: drawing)
        sketch.beginStroke(at: CanvasPoint(x: 70, y: 20))
        sketch.extendStroke(to: CanvasPoint(x: 70, y: 20))   // repeated points are dropped
        sketch.extendStroke(to: CanvasPoint(x: 70, y: 120))
        XCTAssertEqual(sketch.strokes.first?.count, 2)
        XCTAssertEqual(sketch.lineWidth, 14, accuracy: 1e-9)   // on screen: 140 / 10
        let raster = sketch.rasterized()
        XCTAssertEqual([raster.width, raster.height], [70, 70])
        // x = 35, y 10..60 px on the 70 raster; the model's stroke is 50 / 5 = 10 px wide (radius 5):
        // columns 30-39 (centres 30.5-39.5), rows 5-64 (the round caps reach centres 5.5 and 64.5).
        XCTAssertEqual(raster.inkBounds, PixelRect(x: 30, y: 5, width: 10, height: 60))
        XCTAssertEqual(sketch.modelStrokeWidth([[CanvasPoint(x: 3, y: 3)]]), 3)         // a dot: the minimum
        XCTAssertFalse(sketch.prepared().isBlank)
        sketch.clear()
        XCTAssertTrue(sketch.prepared().isBlank)
    }
}
