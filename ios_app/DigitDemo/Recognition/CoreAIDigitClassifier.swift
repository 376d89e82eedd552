// Core AI exists from the iOS 27 SDK (Xcode 27) on: with an older SDK this file compiles to nothing
// and the app reads digits with Core ML only.
#if canImport(CoreAI)
import CoreAI
import DigitKit
import Foundation

/// Reads digits with Core AI, the app's choice on iOS 27 and later when the app bundles a Core AI
/// model (ios_app/README.md says how; app-contract.json `core_ai` what it must look like).
///
/// A Core AI model is a set of functions over arrays: the app calls the contract's function
/// (`classify`) with a Float32 [1, 28, 28, 1] array of the prepared image's 0-255 pixels, the very
/// bytes the Core ML path puts into its grayscale image input (`ModelInput.coreAITensor`), and
/// reads the probabilities in the order of the labels the model carries in its creator-defined
/// metadata. `InferenceFunction` is Sendable and may run from several tasks at once.
@available(iOS 27, *)
struct CoreAIDigitClassifier: DigitClassifying {
    private let function: InferenceFunction
    private let inputName: String
    private let outputName: String
    private let labels: [String]

    /// Reads the model's metadata, specialises the model for this device (slow the first time,
    /// then cached by Core AI), checks it against the contract and loads its function.
    static func load(contract: AppContract, url: URL) async throws -> (CoreAIDigitClassifier, ModelCard) {
        let spec = contract.coreAI
        // The asset's metadata, read without specialising the model.
        let metadata = try AIModelAsset(contentsOf: url).metadata
        let creatorDefined = metadata.creatorDefinedMetadata.mapValues(text)
        let model = try await AIModel(contentsOf: url)
        var traits = CoreAITraits(functionNames: model.functionNames, inputs: [:], outputs: [:],
                                  metadata: creatorDefined)
        if let descriptor = model.functionDescriptor(for: spec.function) {
            for name in descriptor.inputNames {
                traits.inputs[name] = tensor(descriptor.inputDescriptor(of: name))
            }
            for name in descriptor.outputNames {
                traits.outputs[name] = tensor(descriptor.outputDescriptor(of: name))
            }
        }
        let problems = contract.problems(withCoreAI: traits)
        guard problems.isEmpty, let labels = contract.coreAILabels(in: creatorDefined) else {
            throw ModelLoadingError.unsuitable(problems)
        }
        // Throws when loading fails; nil when there is no such function (the check above rules that out).
        guard let function = try model.loadFunction(named: spec.function) else {
            throw ModelLoadingError.unsuitable(["it has no function named \(spec.function)"])
        }
        let classifier = CoreAIDigitClassifier(function: function, inputName: spec.input.name,
                                               outputName: spec.output.name, labels: labels)
        let card = ModelCard.coreAI(contract: contract, description: metadata.description,
                                    author: metadata.author, license: metadata.license,
                                    creatorDefined: creatorDefined)
        return (classifier, card)
    }

    func probabilities(for image: GrayImage) async throws -> [String: Double] {
        let tensor = ModelInput.coreAITensor(image)
        let input = NDArray(scalars: tensor.values, shape: tensor.shape)
        var outputs = try await function.run(inputs: [inputName: input])
        guard let output = outputs.remove(outputName)?.ndArray else {
            throw ModelLoadingError.noProbabilities
        }
        return try ModelInput.labelProbabilities(Self.firstRow(of: output), labels: labels)
    }

    /// The first row of an [N, labels] Float32 array, read through its strides (Core AI may lay
    /// arrays out with padding).
    private static func firstRow(of array: NDArray) throws -> [Float] {
        guard array.scalarType == .float32, array.shape.count == 2, array.shape[0] >= 1,
              array.view(as: Float.self).interleaveLayout == nil else {
            throw ModelLoadingError.noProbabilities
        }
        let count = array.shape[1]
        return array.view(as: Float.self).withUnsafePointer { first, _, strides in
            let step = strides[1]
            return (0..<count).map { first[$0 * step] }
        }
    }

    /// A function input or output as DigitKit's check sees it.
    private static func tensor(_ value: InferenceValue.Descriptor?) -> CoreAITraits.Tensor? {
        guard let value else { return nil }
        guard case .ndArray(let array) = value else {
            return CoreAITraits.Tensor(scalarType: "image", shape: [])
        }
        let scalarType = array.scalarType == .float32 ? "float32" : "\(array.scalarType)"
        return CoreAITraits.Tensor(scalarType: scalarType, shape: array.shape)
    }

    /// kerasml writes every creator-defined value as a string; anything else as Core AI prints it.
    private static func text(_ value: AIModelAsset.Metadata.CreatorDefinedValue) -> String {
        if case let .string(text) = value { return text }
        return value.description
    }
}
#endif
