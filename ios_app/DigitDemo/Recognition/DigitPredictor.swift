import CoreML
import CoreVideo
import Foundation

/// Owns all Core ML code: loads the model once, checks it suits the app, and predicts off the
/// main thread.
///
/// Why MLModel with a pixel buffer rather than Vision: DigitKit has already made the exact 28x28
/// grayscale image MNIST models expect (cropped, fitted to 20 px, centred by mass). Vision would
/// scale and convert it again (and `.scaleFill` of a 28x28 image to 28x28 is at best a no-op), so
/// handing Core ML the bytes directly guarantees the model sees the pixels the Linux tests check.
///
/// The model is looked up by name in the bundle instead of through the class Xcode generates for
/// DigitClassifier.mlmodel, so the app reports a missing or unsuitable model instead of crashing,
/// and any 28x28 grayscale classifier dropped in under that name works whatever its feature names.
final class DigitPredictor: @unchecked Sendable {   // immutable after init; MLModel is thread-safe for predictions
    enum Failure: LocalizedError {
        case missing
        case unsuitable(String)
        case notLoaded
        case noProbabilities

        var errorDescription: String? {
            switch self {
            case .missing:
                return "No model in the app. Add DigitClassifier.mlmodel to the DigitDemo folder "
                    + "(kerasml package MODEL.mlmodel) and run again."
            case let .unsuitable(reason):
                return "The model does not suit this app: \(reason)."
            case .notLoaded:
                return "No model is loaded, so the drawing cannot be read."
            case .noProbabilities:
                return "The model returned no class probabilities."
            }
        }
    }

    static let modelName = "DigitClassifier"   // Xcode compiles DigitClassifier.mlmodel to .mlmodelc

    let card: ModelCard
    private let model: MLModel
    private let imageInput: String
    private let probabilitiesOutput: String
    private let queue = DispatchQueue(label: "DigitPredictor", qos: .userInitiated)

    /// Loads and checks the model on a background queue.
    static func load(bundle: Bundle = .main) async throws -> DigitPredictor {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try DigitPredictor(bundle: bundle) })
            }
        }
    }

    private init(bundle: Bundle) throws {
        guard let url = bundle.url(forResource: Self.modelName, withExtension: "mlmodelc") else {
            throw Failure.missing
        }
        let model = try MLModel(contentsOf: url, configuration: MLModelConfiguration())
        let description = model.modelDescription
        guard let input = description.inputDescriptionsByName.values.first(where: { $0.type == .image }),
              let constraint = input.imageConstraint else {
            throw Failure.unsuitable("it has no image input")
        }
        guard constraint.pixelsWide == MNISTNormalizer.side, constraint.pixelsHigh == MNISTNormalizer.side,
              constraint.pixelFormatType == kCVPixelFormatType_OneComponent8 else {
            throw Failure.unsuitable("its input is \(constraint.pixelsWide)x\(constraint.pixelsHigh), "
                                     + "not a 28x28 grayscale image")
        }
        guard let probabilities = description.predictedProbabilitiesName,
              description.outputDescriptionsByName[probabilities]?.type == .dictionary else {
            throw Failure.unsuitable("it is not a classifier with class probabilities")
        }
        let metadata = description.metadata
        self.model = model
        self.imageInput = input.name
        self.probabilitiesOutput = probabilities
        self.card = ModelCard(
            summary: metadata[.description] as? String ?? "",
            author: metadata[.author] as? String ?? "",
            version: metadata[.versionString] as? String ?? "",
            license: metadata[.license] as? String ?? "",
            creatorDefined: metadata[.creatorDefinedKey] as? [String: String] ?? [:])
    }

    /// Class label -> probability for a prepared 28x28 image.
    func probabilities(for image: GrayImage) async throws -> [String: Double] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.predict(image) })
            }
        }
    }

    private func predict(_ image: GrayImage) throws -> [String: Double] {
        let features = try MLDictionaryFeatureProvider(
            dictionary: [imageInput: MLFeatureValue(pixelBuffer: try Self.pixelBuffer(image))])
        let output = try model.prediction(from: features)
        guard let dictionary = output.featureValue(for: probabilitiesOutput)?.dictionaryValue else {
            throw Failure.noProbabilities
        }
        var probabilities: [String: Double] = [:]
        for (key, value) in dictionary {
            probabilities[LabelFormat.label(key.base)] = value.doubleValue
        }
        return probabilities
    }

    /// The image as a one-byte-per-pixel grayscale pixel buffer (rows may be padded).
    private static func pixelBuffer(_ image: GrayImage) throws -> CVPixelBuffer {
        var made: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, image.width, image.height,
                                         kCVPixelFormatType_OneComponent8, nil, &made)
        guard status == kCVReturnSuccess, let buffer = made else {
            throw Failure.unsuitable("cannot make a \(image.width)x\(image.height) pixel buffer (\(status))")
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw Failure.unsuitable("cannot write to the pixel buffer")
        }
        let bytesPerRow = CVPixelBufferGetBytesPerRow(buffer)
        image.pixels.withUnsafeBytes { source in
            guard let pixels = source.baseAddress else { return }
            for row in 0..<image.height {
                (base + row * bytesPerRow).copyMemory(from: pixels + row * image.width, byteCount: image.width)
            }
        }
        return buffer
    }
}
