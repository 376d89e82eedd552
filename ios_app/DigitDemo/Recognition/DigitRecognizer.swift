import Combine
import DigitKit
import Foundation
import UIKit

/// The screen's state: the drawing or the photo, the model's reading of it, and the model itself.
///
/// Views call `draw`, `strokeEnded`, `clear` and `read(photo:)`, and only render what is published
/// here. Preparing the input and running the model happen off the main thread.
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
    /// A prediction that failed although the model loaded (rare: Core ML errors).
    @Published private(set) var failure: String?
    /// The last photo's preparation, step by step, and what was done in words.
    @Published private(set) var photoSteps: [PhotoStep] = []
    @Published private(set) var photoNotes: [String] = []

    /// The thresholds from the app contract (the standard ones until the model has loaded).
    private(set) var policy: ConfidencePolicy
    private var tracker = StrokeTracker()
    private var predictor: DigitPredictor.Loaded?
    private var pending: Task<Void, Never>?

    init() {
        let contract = try? DigitPredictor.contract(in: .main)
        policy = contract?.policy ?? ConfidencePolicy(minimumConfidence: 1, minimumInkExtent: 0)
    }

    /// Loads the model once; a missing or unsuitable model becomes one message, not a crash.
    func loadModel() async {
        guard predictor == nil else { return }
        do {
            let loaded = try await Task.detached(priority: .userInitiated) { try await DigitPredictor.load() }.value
            predictor = loaded
            policy = loaded.contract.policy
            modelState = .ready(loaded.card)
            if !sketch.isEmpty { strokeEnded() }
        } catch {
            modelState = .unavailable(error.localizedDescription)
        }
    }

    /// A drag moved to `point`; `dragStart` tells a new drag (a new stroke) from the same one.
    func draw(to point: Point, dragStart: Point) {
        tracker.dragChanged(to: point, dragStart: dragStart, in: &sketch)
    }

    /// Reads the drawing when a stroke ends (or is cancelled); a newer input cancels an older reading.
    func strokeEnded() {
        tracker.dragFinished()
        guard let predictor else { return }         // no model: the banner says so, once
        let sketch = sketch, policy = policy
        start {
            let raster = sketch.rasterized()
            if let early = policy.precheck(raster) { return (nil, early) }
            let input = MNISTNormalizer.normalize(raster)
            let probabilities = try await predictor.classifier.probabilities(for: input)
            return (input, policy.reading(for: Ranking.top(probabilities, count: predictor.contract.reading.top)))
        }
    }

    /// Reads a photo of a digit on paper, prepared by DigitKit exactly as `kerasml predict` does.
    func read(photo: UIImage) {
        guard let predictor, let pixels = PhotoPixels(photo) else {
            photoNotes = predictor == nil ? [] : ["The photo could not be decoded."]
            return
        }
        let policy = policy
        pending?.cancel()
        pending = Task {
            do {
                let prepared = try await Task.detached(priority: .userInitiated) {
                    try PhotoPreparer.prepare(pixels: pixels.pixels, width: pixels.width, height: pixels.height,
                                              channels: PhotoPixels.channels)
                }.value
                guard !Task.isCancelled else { return }
                photoSteps = prepared.steps.map { PhotoStep(name: $0.name, image: $0.image) }
                photoNotes = prepared.notes
                if prepared.image.isBlank {
                    show(input: nil, reading: .unsure([]))
                    return
                }
                let probabilities = try await predictor.classifier.probabilities(for: prepared.image)
                guard !Task.isCancelled else { return }
                show(input: prepared.image,
                     reading: policy.reading(for: Ranking.top(probabilities, count: predictor.contract.reading.top)))
            } catch {
                guard !Task.isCancelled else { return }
                failure = "Prediction failed: \(error.localizedDescription)"
            }
        }
    }

    func clear() {
        pending?.cancel()
        sketch.clear()
        tracker.dragFinished()
        reading = .empty
        modelInput = nil
        failure = nil
        photoSteps = []
        photoNotes = []
    }

    private func start(_ work: @escaping @Sendable () async throws -> (GrayImage?, Reading)) {
        pending?.cancel()
        pending = Task {
            do {
                let (input, reading) = try await Task.detached(priority: .userInitiated, operation: work).value
                guard !Task.isCancelled else { return }
                show(input: input, reading: reading)
            } catch {
                guard !Task.isCancelled else { return }
                failure = "Prediction failed: \(error.localizedDescription)"
            }
        }
    }

    private func show(input: GrayImage?, reading: Reading) {
        modelInput = input
        self.reading = reading
        failure = nil
    }
}
