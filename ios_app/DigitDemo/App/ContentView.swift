import DigitKit
import SwiftUI

/// The one screen: draw a digit or show one on paper, the reading, and the model's metadata one tap away.
struct ContentView: View {
    @StateObject private var recognizer = DigitRecognizer()
    @State private var showsModelInfo = false

    var body: some View {
        NavigationStack {
            VStack(spacing: 16) {
                if case let .unavailable(message) = recognizer.modelState {
                    ModelMissingBanner(message: message)
                }
                Picker("Input", selection: Binding(get: { recognizer.session.source },
                                                   set: { recognizer.select($0) })) {
                    ForEach(InputSource.allCases) { Text($0.rawValue).tag($0) }
                }
                .pickerStyle(.segmented)
                .frame(maxWidth: 420)
                switch recognizer.session.source {
                case .drawing: drawing
                case .photo:
                    PhotoInputView(steps: recognizer.session.shown.photoSteps,
                                   notes: recognizer.session.shown.photoNotes,
                                   onItem: { recognizer.read(photoItem: $0) },
                                   onPicture: { recognizer.read(photo: $0) })
                        .frame(maxWidth: 420, alignment: .leading)
                }
                // Every outcome has its words (DigitKit's `AppContract.display`), a failed first photo included.
                if case .ready = recognizer.modelState, let display = recognizer.display {
                    PredictionView(display: display, modelInput: recognizer.session.shown.modelInput,
                                   isReading: recognizer.session.isReading)
                        .frame(maxWidth: 420)
                }
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

    /// The canvas, its strokes as wide as the bundled contract says; none in a broken build without
    /// a contract (the banner says why).
    @ViewBuilder private var drawing: some View {
        if let sketch = recognizer.sketch {
            VStack(spacing: 12) {
                DrawingCanvas(strokes: sketch.strokes,
                              lineWidthFraction: sketch.lineWidthFraction,
                              onDraw: { recognizer.draw(to: $0, dragStart: $1) },
                              onStrokeEnd: { recognizer.strokeEnded() })
                    .frame(maxWidth: 420)
                HStack {
                    Button("Clear", role: .destructive) { recognizer.clear() }
                        .buttonStyle(.bordered)
                        .disabled(sketch.isEmpty)
                    Spacer()
                    Text("Draw one digit, big or small, anywhere.")
                        .font(.footnote)
                        .foregroundStyle(.secondary)
                }
                .frame(maxWidth: 420)
            }
        }
    }
}

/// Shown instead of a crash, and instead of any reading, when the app has no usable model.
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
