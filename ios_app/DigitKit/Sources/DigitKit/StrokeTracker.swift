import Foundation

/// Turns a drag gesture's reports into strokes of a `Sketch`.
///
/// The system can cancel a drag (a notification, a second finger, Control Center) without ever
/// reporting its end. So a stroke is not "open until the drag ends": each report carries where its
/// drag started, and a drag that started anywhere else than the one being drawn begins a new
/// stroke, whether or not the previous one was reported finished.
public struct StrokeTracker: Equatable, Sendable {
    /// Where the drag that draws the last stroke started; nil when no drag is drawing.
    public private(set) var activeDragStart: CanvasPoint?

    public init() {}

    /// A drag moved to `location`; `dragStart` is where that drag began (SwiftUI's `startLocation`).
    public mutating func dragChanged(to location: CanvasPoint, dragStart: CanvasPoint, in sketch: inout Sketch) {
        if let active = activeDragStart, active == dragStart, !sketch.isEmpty {
            sketch.extendStroke(to: location)
        } else {
            sketch.beginStroke(at: location)
            activeDragStart = dragStart
        }
    }

    /// The drag ended or was cancelled: the next report, wherever it starts, begins a new stroke.
    public mutating func dragFinished() {
        activeDragStart = nil
    }
}
