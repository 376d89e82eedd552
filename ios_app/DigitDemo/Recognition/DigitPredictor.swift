import CoreML
import CoreVideo
import DigitKit
import Foundation

/// Owns all Core ML code: loads the model once, checks it against the app contract, and predicts
/// off the main thread.
///
/// Why MLModel with a pixel buffer rather than Vision: DigitKit has already made the exact 28x28
/// grayscale image MNIST models expect (cropped, fitted to 20 px, centred by mass). Vision would
/// scale and convert it again (and `.scaleFill` of a 28x28 image to 28x28 is at best a no-op), so
/// handing Core ML the bytes directly guarantees the model sees the pixels the Linux tests check.
///
/// The model is looked up by the contract's name in the bundle instead of through the class Xcode
/// generates for DigitClassifier.mlmodel, so the app reports a missing or unsuitable model instead
/// of crashing. What "suitable" means is the app contract (app-contract.json, bundled), the same
/// file `kerasml package` checks models against; DigitKit's `AppContract` does the check.
final class DigitPredictor: @unchecked Sendable {   // immutable after init; MLModel is thread-safe for predictions
    enum Failure: LocalizedError {
        case noContract(String)
        case missing(String)
        case unsuitable([String])
        case noProbabilities

        var errorDescription: String? {
            switch self {
            case let .noContract(reason):
                return "The app's model contract (app-contract.json) is missing or broken: \(reason)."
            case let .missing(name):
                return "No model in the app. Put \(name).mlmodel into the DigitDemo folder "
                    + "(kerasml package MODEL.mlmodel) and run again."
            case let .unsuitable(reasons):
                return "The model does not suit this app: \(reasons.joined(separator: "; "))."
            case .noProbabilities:
                return "The model returned no class probabilities."
            }
        }
    }

    let contract: AppContract
    let card: ModelCard
    private let model: MLModel
    private let imageInput: String
    private let probabilitiesOutput: String
    private let queue = DispatchQueue(label: "DigitPredictor", qos: .userInitiated)

    /// Loads the contract and the model, and checks the model, on a background queue.
    static func load(bundle: Bundle = .main) async throws -> DigitPredictor {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result { try DigitPredictor(bundle: bundle) })
            }
        }
    }

    static func contract(in bundle: Bundle) throws -> AppContract {
        guard let url = bundle.url(forResource: "app-contract", withExtension: "json") else {
            throw Failure.noContract("not in the app bundle")
        }
        do {
            return try AppContract(json: Data(contentsOf: url))
        } catch {
            throw Failure.noContract(error.localizedDescription)
        }
    }

    private init(bundle: Bundle) throws {
        let contract = try Self.contract(in: bundle)
        guard let url = bundle.url(forResource: contract.modelName, withExtension: "mlmodelc") else {
            throw Failure.missing(contract.modelName)     // Xcode compiles the .mlmodel to .mlmodelc
        }
        let model = try MLModel(contentsOf: url, configuration: MLModelConfiguration())
        let description = model.modelDescription
        let metadata = description.metadata
        let creatorDefined = metadata[.creatorDefinedKey] as? [String: String] ?? [:]
        let image = description.inputDescriptionsByName.values.first { $0.type == .image }
        let traits = ModelTraits(
            inputCount: description.inputDescriptionsByName.count,
            imageInput: image?.imageConstraint.map {
                ModelTraits.Image(width: $0.pixelsWide, height: $0.pixelsHigh, colour: Self.colour($0.pixelFormatType))
            },
            labels: description.classLabels?.map { LabelFormat.label($0) },
            hasProbabilities: description.predictedProbabilitiesName.flatMap {
                description.outputDescriptionsByName[$0]?.type
            } == .dictionary,
            metadata: creatorDefined)
        let problems = contract.problems(with: traits)
        guard problems.isEmpty, let image, let probabilities = description.predictedProbabilitiesName else {
            throw Failure.unsuitable(problems)
        }
        self.contract = contract
        self.model = model
        self.imageInput = image.name
        self.probabilitiesOutput = probabilities
        self.card = ModelCard(
            contract: contract,
            summary: metadata[.description] as? String ?? "",
            author: metadata[.author] as? String ?? "",
            version: metadata[.versionString] as? String ?? "",
            license: metadata[.license] as? String ?? "",
            creatorDefined: creatorDefined)
    }

    /// The contract's words for a Core ML image input's pixel format.
    private static func colour(_ format: OSType) -> String {
        switch format {
        case kCVPixelFormatType_OneComponent8: return "grayscale"
        case kCVPixelFormatType_32BGRA, kCVPixelFormatType_32ARGB: return "rgb"
        default: return "pixel format \(format)"
        }
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
            throw Failure.unsuitable(["cannot make a \(image.width)x\(image.height) pixel buffer (\(status))"])
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw Failure.unsuitable(["cannot write to the pixel buffer"])
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
