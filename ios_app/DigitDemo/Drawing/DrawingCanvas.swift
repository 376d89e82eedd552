import DigitKit
import SwiftUI

/// A square black canvas that draws white strokes with a finger or Apple Pencil.
///
/// Points are reported in unit coordinates (0...1 across the canvas), so the drawing keeps its
/// shape when the canvas changes size; on screen the stroke width is a fixed fraction of the side,
/// the app contract's (`drawing.screen_stroke_divisor`, read by DigitKit's `Sketch.lineWidthFraction`).
///
/// Each report carries where its drag started (`startLocation`), so DigitKit's `StrokeTracker`
/// begins a new stroke for a new drag even when the system cancelled the previous one without an
/// `onEnded` (a notification, a second finger, Control Center). The end of a drag is observed
/// through `@GestureState`, which SwiftUI resets both when the drag ends and when it is cancelled.
struct DrawingCanvas: View {
    let strokes: [[CanvasPoint]]
    /// Stroke width as a fraction of the canvas side: the sketch's, from the contract.
    let lineWidthFraction: Double
    /// (location, where this drag started), both in unit coordinates.
    let onDraw: (CanvasPoint, CanvasPoint) -> Void
    /// The drag ended or was cancelled.
    let onStrokeEnd: () -> Void

    @GestureState private var dragStart: CGPoint?

    var body: some View {
        GeometryReader { proxy in
            let side = min(proxy.size.width, proxy.size.height)
            // The renderer gets plain values, not the view.
            let ink = path(side: side), lineWidth = side * lineWidthFraction
            Canvas { context, _ in
                context.stroke(ink, with: .color(.white),
                               style: StrokeStyle(lineWidth: lineWidth, lineCap: .round, lineJoin: .round))
            }
            .frame(width: side, height: side)
            .background(.black)
            .clipShape(RoundedRectangle(cornerRadius: 12))
            .contentShape(Rectangle())
            .gesture(
                DragGesture(minimumDistance: 0, coordinateSpace: .local)
                    .updating($dragStart) { value, state, _ in state = value.startLocation }
                    .onChanged { value in
                        guard side > 0 else { return }
                        onDraw(CanvasPoint(x: value.location.x / side, y: value.location.y / side),
                               CanvasPoint(x: value.startLocation.x / side, y: value.startLocation.y / side))
                    }
            )
            .onValueChange(of: dragStart) { start in
                if start == nil { onStrokeEnd() }          // ended or cancelled: both reset the state
            }
        }
        .aspectRatio(1, contentMode: .fit)
        .accessibilityElement()
        .accessibilityLabel("Drawing canvas")
        .accessibilityHint("Draw a digit with one finger")
    }

    private func path(side: Double) -> Path {
        var path = Path()
        for stroke in strokes {
            guard let first = stroke.first else { continue }
            path.move(to: CGPoint(x: first.x * side, y: first.y * side))
            // A tap is a one-point stroke: a zero-length line with round caps draws it as a dot.
            for point in stroke.count == 1 ? stroke : Array(stroke.dropFirst()) {
                path.addLine(to: CGPoint(x: point.x * side, y: point.y * side))
            }
        }
        return path
    }
}
