import XCTest
@testable import DigitKit

final class StrokeTrackerTests: XCTestCase {
    private let a = CanvasPoint(x: 0.2, y: 0.2), b = CanvasPoint(x: 0.3, y: 0.4), c = CanvasPoint(x: 0.6, y: 0.6), d = CanvasPoint(x: 0.7, y: 0.9)

    func testOneDragIsOneStroke() throws {
        var sketch = Sketch(canvasSide: 1, drawing: try RepositoryFiles.drawing()), tracker = StrokeTracker()
        tracker.dragChanged(to: a, dragStart: a, in: &sketch)
        tracker.dragChanged(to: b, dragStart: a, in: &sketch)
        tracker.dragFinished()
        XCTAssertEqual(sketch.strokes, [[a, b]])
        XCTAssertNil(tracker.activeDragStart)
    }

    func testACancelledDragDoesNotJoinTheNextStroke() throws {
        var sketch = Sketch(canvasSide: 1, drawing: try RepositoryFiles.drawing()), tracker = StrokeTracker()
        tracker.dragChanged(to: a, dragStart: a, in: &sketch)
        tracker.dragChanged(to: b, dragStart: a, in: &sketch)
        // The system cancels the drag: no dragFinished(). The next touch starts elsewhere.
        tracker.dragChanged(to: c, dragStart: c, in: &sketch)
        tracker.dragChanged(to: d, dragStart: c, in: &sketch)
        XCTAssertEqual(sketch.strokes, [[a, b], [c, d]])
    }

    func testANewDragFromTheSameSpotIsANewStrokeOnceTheOldOneFinished() throws {
        var sketch = Sketch(canvasSide: 1, drawing: try RepositoryFiles.drawing()), tracker = StrokeTracker()
        tracker.dragChanged(to: a, dragStart: a, in: &sketch)
        tracker.dragFinished()                          // ended, or cancelled and reset by SwiftUI
        tracker.dragChanged(to: a, dragStart: a, in: &sketch)
        tracker.dragChanged(to: b, dragStart: a, in: &sketch)
        XCTAssertEqual(sketch.strokes, [[a], [a, b]])
    }

    func testClearingWhileDraggingStartsAFreshStroke() throws {
        var sketch = Sketch(canvasSide: 1, drawing: try RepositoryFiles.drawing()), tracker = StrokeTracker()
        tracker.dragChanged(to: a, dragStart: a, in: &sketch)
        sketch.clear()
        tracker.dragChanged(to: b, dragStart: a, in: &sketch)
        XCTAssertEqual(sketch.strokes, [[b]])
    }
}
