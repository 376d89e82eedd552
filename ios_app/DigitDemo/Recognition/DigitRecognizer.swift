import Combine
import Foundation

/// The screen's state: the drawing, the model's reading of it, and the model itself.
///
/// Views call `draw`, `strokeEnded` and `clear`, and only render what is published here.
/// Preparing the drawing and running the model happen off the main thread.
@MainActor
final class DigitRecognizer: ObservableObject {
    enum ModelState {
        case loading
        case ready(ModelCard)
        case unavailable(String)
    }

    /// Strokes in unit coordinates: the canvas side is 1, whatever its size on screen.
    @Published private(set) var sketch = Sketch(canvasSide: 1)
    @Published private(set) var reading: Reading = .empty
    /// The 28x28 image the model was given for the current reading.
    @Published private(set) var modelInput: GrayImage?
    @Published private(set) var modelState: ModelState = .loading
    @Published private(set) var failure: String?

    let policy = ConfidencePolicy.standard
    private var predictor: DigitPredictor?
    private var pending: Task<Void, Never>?

    /// Loads the model once; a missing or unsuitable model becomes a message, not a crash.
    func loadModel() async {
        guard predictor == nil else { return }
        do {
            let loaded = try await DigitPredictor.load()
            predictor = loaded
            modelState = .ready(loaded.card)
            if !sketch.isEmpty { strokeEnded() }
        } catch {
            modelState = .unavailable(error.localizedDescription)
        }
    }

    func draw(to point: Point, startsStroke: Bool) {
        if startsStroke {
            sketch.beginStroke(at: point)
        } else {
            sketch.extendStroke(to: point)
        }
    }

    /// Reads the drawing when a stroke ends; a newer stroke cancels an older reading.
    func strokeEnded() {
        pending?.cancel()
        let sketch = sketch, predictor = predictor, policy = policy
        pending = Task {
            do {
                let (input, reading) = try await Self.read(sketch, predictor: predictor, policy: policy)
                guard !Task.isCancelled else { return }
                self.modelInput = input
                self.reading = reading
                self.failure = nil
            } catch {
                guard !Task.isCancelled else { return }
                self.failure = "Prediction failed: \(error.localizedDescription)"
            }
        }
    }

    func clear() {
        pending?.cancel()
        sketch.clear()
        reading = .empty
        modelInput = nil
        failure = nil
    }

    /// Rasterise, normalise like MNIST, then ask the model unless the drawing is empty or a speck.
    /// Non-isolated, so it runs on the concurrent pool rather than the main actor.
    nonisolated private static func read(_ sketch: Sketch, predictor: DigitPredictor?,
                                         policy: ConfidencePolicy) async throws -> (GrayImage?, Reading) {
        let raster = sketch.rasterized()
        if let early = policy.precheck(raster) { return (nil, early) }
        let input = MNISTNormalizer.normalize(raster)
        guard let predictor else { throw DigitPredictor.Failure.notLoaded }
        let probabilities = try await predictor.probabilities(for: input)
        return (input, policy.reading(for: Ranking.top(probabilities, count: 3)))
    }
}
