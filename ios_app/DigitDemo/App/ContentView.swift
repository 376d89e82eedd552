import SwiftUI

/// The one screen: canvas, Clear, the reading, and the model's metadata one tap away.
///
/// DigitKit's sources (ios_app/Sources/DigitKit) are compiled into this target, so its types
/// (`Sketch`, `Reading`, `LabelFormat`, ...) need no import.
struct ContentView: View {
    @StateObject private var recognizer = DigitRecognizer()
    @State private var showsModelInfo = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 16) {
                if case let .unavailable(message) = recognizer.modelState {
                    ModelMissingBanner(message: message)
                }
                DrawingCanvas(strokes: recognizer.sketch.strokes,
                              lineWidthFraction: Sketch.lineWidthFraction,
                              onDraw: { recognizer.draw(to: $0, startsStroke: $1) },
                              onStrokeEnd: { recognizer.strokeEnded() })
                    .frame(maxWidth: 420)
                HStack {
                    Button("Clear", role: .destructive) { recognizer.clear() }
                        .buttonStyle(.bordered)
                        .disabled(recognizer.sketch.isEmpty)
                    Spacer()
                    Text("Draw one digit, big or small, anywhere.")
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
                .frame(maxWidth: 420)
                PredictionView(reading: recognizer.reading, modelInput: recognizer.modelInput,
                               minimumConfidence: recognizer.policy.minimumConfidence,
                               failure: recognizer.failure)
                    .frame(maxWidth: 420)
                if case let .ready(card) = recognizer.modelState {
                    Button { showsModelInfo = true } label: {
                        Label(card.summaryLine, systemImage: "info.circle")
                            .font(.caption)
                            .foregroundStyle(.secondary)
                            .frame(maxWidth: 420, alignment: .leading)
                    }
                    .buttonStyle(.plain)
                }
                Spacer(minLength: 0)
            }
            .padding()
            .navigationTitle("Digit Demo")
            .navigationBarTitleDisplayMode(.inline)
            .toolbar {
                Button {
                    showsModelInfo = true
                } label: {
                    Label("About the model", systemImage: "info.circle")
                }
            }
            .sheet(isPresented: $showsModelInfo) {
                ModelInfoView(state: recognizer.modelState)
                    .presentationDetents([.medium, .large])
            }
        }
        .task { await recognizer.loadModel() }
    }
}

/// Shown instead of a crash when the app has no usable model.
private struct ModelMissingBanner: View {
    let message: String

    var body: some View {
        Label(message, systemImage: "exclamationmark.triangle.fill")
            .font(.callout)
            .padding()
            .frame(maxWidth: 420, alignment: .leading)
            .background(.yellow.opacity(0.2), in: RoundedRectangle(cornerRadius: 12))
    }
}
