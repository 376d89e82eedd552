import SwiftUI

/// A square black canvas that draws white strokes with a finger or Apple Pencil.
///
/// Points are reported in unit coordinates (0...1 across the canvas), so the drawing keeps its
/// shape when the canvas changes size; the stroke width is a fixed fraction of the side, which is
/// what makes the 28x28 image the model sees have MNIST-like 2-3 px strokes.
struct DrawingCanvas: View {
    let strokes: [[Point]]
    let lineWidthFraction: Double
    let onDraw: (Point, Bool) -> Void
    let onStrokeEnd: () -> Void

    @State private var isDrawing = false

    var body: some View {
        GeometryReader { proxy in
            let side = min(proxy.size.width, proxy.size.height)
            Canvas { context, _ in
                context.stroke(path(side: side), with: .color(.white),
                               style: StrokeStyle(lineWidth: side * lineWidthFraction,
                                                  lineCap: .round, lineJoin: .round))
            }
            .frame(width: side, height: side)
            .background(.black)
            .clipShape(RoundedRectangle(cornerRadius: 12))
            .contentShape(Rectangle())
            .gesture(
                DragGesture(minimumDistance: 0, coordinateSpace: .local)
                    .onChanged { value in
                        guard side > 0 else { return }
                        onDraw(Point(x: value.location.x / side, y: value.location.y / side), !isDrawing)
                        isDrawing = true
                    }
                    .onEnded { _ in
                        isDrawing = false
                        onStrokeEnd()
                    }
            )
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
