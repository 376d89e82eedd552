import CoreML
import CoreVideo
import DigitKit
import Foundation

/// Reads digits with Core ML: the app's model on every iOS version, and on iOS 27 and later when
/// no Core AI model is bundled (or it cannot be used).
///
/// Why MLModel with a pixel buffer rather than Vision: DigitKit has already made the exact 28x28
/// grayscale image MNIST models expect (cropped, fitted to 20 px, centred by mass). Vision would
/// scale and convert it again, so handing Core ML the bytes directly guarantees the model sees the
/// pixels the Linux tests check (`ModelInput.grayscaleRows`, the same values Core AI gets as floats).
///
/// The model is looked up by the contract's name in the bundle instead of through the class Xcode
/// generates for DigitClassifier.mlmodel, so the app reports a missing or unsuitable model instead
/// of crashing. An actor, because MLModel is a class the app must not share unguarded between tasks.
actor CoreMLDigitClassifier: DigitClassifying {
    /// The model's metadata and that Core ML runs it (a Sendable constant: read without awaiting).
    let card: ModelCard
    private let model: MLModel
    private let imageInput: String
    private let probabilitiesOutput: String

    /// Loads the compiled model (Xcode compiles DigitClassifier.mlmodel to DigitClassifier.mlmodelc),
    /// checks it against the contract and reads its card. Slow: call it off the main thread.
    init(contract: AppContract, frameworkNote: String?) throws {
        guard let url = Bundle.main.url(forResource: contract.modelName, withExtension: "mlmodelc") else {
            throw ModelLoadingError.missing(contract.modelName)
        }
        let model = try MLModel(contentsOf: url, configuration: MLModelConfiguration())
        let description = model.modelDescription
        let metadata = description.metadata
        let creatorDefined = metadata[.creatorDefinedKey] as? [String: String] ?? [:]
        let image = description.inputDescriptionsByName.values.first { $0.type == .image }
        let labels = description.classLabels?.map { LabelFormat.label($0) }
        let traits = ModelTraits(
            inputCount: description.inputDescriptionsByName.count,
            imageInput: image?.imageConstraint.map {
                ModelTraits.Image(width: $0.pixelsWide, height: $0.pixelsHigh, colour: Self.colour($0.pixelFormatType))
            },
            labels: labels,
            hasProbabilities: description.predictedProbabilitiesName.flatMap {
                description.outputDescriptionsByName[$0]?.type
            } == .dictionary,
            metadata: creatorDefined)
        let problems = contract.problems(with: traits)
        guard problems.isEmpty, let image, let probabilities = description.predictedProbabilitiesName else {
            throw ModelLoadingError.unsuitable(problems)
        }
        self.model = model
        self.imageInput = image.name
        self.probabilitiesOutput = probabilities
        self.card = ModelCard(
            contract: contract, framework: .coreML, frameworkNote: frameworkNote,
            summary: metadata[.description] as? String ?? "",
            author: metadata[.author] as? String ?? "",
            version: metadata[.versionString] as? String ?? "",
            license: metadata[.license] as? String ?? "",
            labels: labels ?? [],
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

    func probabilities(for image: GrayImage) throws -> [String: Double] {
        let features = try MLDictionaryFeatureProvider(
            dictionary: [imageInput: MLFeatureValue(pixelBuffer: try Self.pixelBuffer(image))])
        let output = try model.prediction(from: features)
        guard let dictionary = output.featureValue(for: probabilitiesOutput)?.dictionaryValue else {
            throw ModelLoadingError.noProbabilities
        }
        var probabilities: [String: Double] = [:]
        for (key, value) in dictionary {
            probabilities[LabelFormat.label(key.base)] = value.doubleValue
        }
        return probabilities
    }

    /// The image as a one-byte-per-pixel grayscale pixel buffer (rows may be padded): DigitKit's
    /// `ModelInput.grayscaleRows`, row by row.
    private static func pixelBuffer(_ image: GrayImage) throws -> CVPixelBuffer {
        var made: CVPixelBuffer?
        let status = CVPixelBufferCreate(kCFAllocatorDefault, image.width, image.height,
                                         kCVPixelFormatType_OneComponent8, nil, &made)
        guard status == kCVReturnSuccess, let buffer = made else {
            throw ModelLoadingError.unsuitable(["cannot make a \(image.width)x\(image.height) pixel buffer (\(status))"])
        }
        CVPixelBufferLockBaseAddress(buffer, [])
        defer { CVPixelBufferUnlockBaseAddress(buffer, []) }
        guard let base = CVPixelBufferGetBaseAddress(buffer) else {
            throw ModelLoadingError.unsuitable(["cannot write to the pixel buffer"])
        }
        let bytesPerRow = CVPixelBufferGetBytesPerRow(buffer)
        for (index, row) in ModelInput.grayscaleRows(image).enumerated() {
            row.withUnsafeBytes { bytes in
                guard let source = bytes.baseAddress else { return }
                (base + index * bytesPerRow).copyMemory(from: source, byteCount: bytes.count)
            }
        }
        return buffer
    }
}
