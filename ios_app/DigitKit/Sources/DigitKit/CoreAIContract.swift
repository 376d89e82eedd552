import Foundation

/// The contract's `core_ai` section: the Core AI model the app prefers on iOS 27 and later.
///
/// A Core AI model is functions over arrays, not a classifier with an image input: the app calls
/// `function` with `input`, a Float32 array of the 28x28 prepared image's 0-255 pixel values
/// (`ModelInput.coreAITensor`), and reads `output`, the probabilities in the order of the labels
/// the model carries in its creator-defined metadata under `labelsKey` (Core AI's metadata has no
/// labels or version field; the version is under `versionKey`).
public struct CoreAIModel: Decodable, Equatable, Sendable {
    public var file: String
    public var minimumIOS: Int
    public var function: String
    public var input: TensorSpec
    public var output: TensorSpec
    public var labelsKey: String
    public var versionKey: String

    enum CodingKeys: String, CodingKey {
        case file, function, input, output
        case minimumIOS = "minimum_ios", labelsKey = "labels_key", versionKey = "version_key"
    }

    /// The folder the Xcode project copies into the app as is (a folder reference), which is also
    /// the model's subdirectory in the app bundle: "CoreAIModels".
    public var bundleFolder: String { components.dropLast().last ?? "" }

    /// The model's name and extension in that folder: ("DigitClassifier", "aimodel").
    public var resourceName: String { String(fileName.prefix(upTo: fileName.lastIndex(of: ".") ?? fileName.endIndex)) }
    public var resourceExtension: String { fileName.lastIndex(of: ".").map { String(fileName[fileName.index(after: $0)...]) } ?? "" }

    private var components: [String] { file.split(separator: "/").map(String.init) }
    private var fileName: String { components.last ?? file }
}

/// An input or output array of a Core AI function, as the contract describes it.
public struct TensorSpec: Decodable, Equatable, Sendable {
    public var name: String
    /// "float32".
    public var scalarType: String
    /// The length of each dimension; nil for the batch dimension, whose size the app chooses (1).
    public var shape: [Int?]
    /// The range of the values the app passes, for the input: [0, 255].
    public var range: [Double]?

    enum CodingKeys: String, CodingKey {
        case name, shape, range
        case scalarType = "scalar_type"
    }

    /// Whether a model's shape fits: the same rank, the same fixed lengths, and a batch dimension
    /// that is dynamic (negative, as Core AI reports it) or 1.
    public func accepts(_ modelShape: [Int]) -> Bool {
        guard modelShape.count == shape.count else { return false }
        return zip(shape, modelShape).allSatisfy { wanted, actual in
            wanted.map { $0 == actual } ?? (actual < 0 || actual == 1)
        }
    }

    /// "[N, 28, 28, 1]".
    public var shapeText: String { "[" + shape.map { $0.map(String.init) ?? "N" }.joined(separator: ", ") + "]" }
}

/// What the app learns about a Core AI model (its function's descriptor and the asset's metadata),
/// in plain values so the check runs on Linux.
public struct CoreAITraits: Equatable, Sendable {
    /// An array the function takes or returns; dynamic dimensions are negative, as Core AI reports them.
    public struct Tensor: Equatable, Sendable {
        /// "float32", "float16", ...; "image" for a pixel-buffer value.
        public var scalarType: String
        public var shape: [Int]

        public init(scalarType: String, shape: [Int]) {
            self.scalarType = scalarType
            self.shape = shape
        }

        /// "[?, 28, 28, 1]".
        public var shapeText: String { "[" + shape.map { $0 < 0 ? "?" : String($0) }.joined(separator: ", ") + "]" }
    }

    public var functionNames: [String]
    /// The inputs and outputs of the contract's function, by name (empty when there is no such function).
    public var inputs: [String: Tensor]
    public var outputs: [String: Tensor]
    /// The creator-defined metadata, every value as text.
    public var metadata: [String: String]

    public init(functionNames: [String], inputs: [String: Tensor], outputs: [String: Tensor],
                metadata: [String: String] = [:]) {
        self.functionNames = functionNames
        self.inputs = inputs
        self.outputs = outputs
        self.metadata = metadata
    }
}

extension AppContract {
    /// Every reason the app cannot use a Core AI model (empty when it fits).
    public func problems(withCoreAI traits: CoreAITraits) -> [String] {
        refusals(ofCoreAI: traits).map(\.message)
    }

    /// `problems(withCoreAI:)` with a stable kind for each.
    public func refusals(ofCoreAI traits: CoreAITraits) -> [ContractProblem] {
        let wanted = coreAI
        guard traits.functionNames.contains(wanted.function) else {
            let others = traits.functionNames.isEmpty ? "none" : traits.functionNames.joined(separator: ", ")
            return [ContractProblem(.function, "it has no function named \(wanted.function) (it has \(others))")]
        }
        var found = tensorProblems(traits.inputs[wanted.input.name], wanted.input, role: "input",
                                   kinds: (.input, .inputType, .inputShape))
        found += tensorProblems(traits.outputs[wanted.output.name], wanted.output, role: "output",
                                kinds: (.output, .outputType, .outputShape))
        switch coreAILabelsResult(in: traits.metadata) {
        case .missing:
            found.append(ContractProblem(.labelsMetadata, "it has no \(wanted.labelsKey) metadata (a Core AI "
                                         + "model's labels, as a JSON list)"))
        case .invalid:
            found.append(ContractProblem(.labelsMetadata, "its \(wanted.labelsKey) metadata is not a JSON list of labels"))
        case let .labels(labels):
            found += labelProblems(labels)
        }
        found += inkProblems(traits.metadata)
        return found
    }

    /// The labels a Core AI model carries in its metadata, in the order of its output; nil when
    /// it has none or they are not a JSON list of strings.
    public func coreAILabels(in metadata: [String: String]) -> [String]? {
        if case let .labels(labels) = coreAILabelsResult(in: metadata) { return labels }
        return nil
    }

    private enum LabelsResult { case missing, invalid, labels([String]) }

    private func coreAILabelsResult(in metadata: [String: String]) -> LabelsResult {
        guard let text = metadata[coreAI.labelsKey] else { return .missing }
        guard let labels = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return .invalid }
        return .labels(labels)
    }

    private func tensorProblems(_ tensor: CoreAITraits.Tensor?, _ spec: TensorSpec, role: String,
                                kinds: (missing: ContractProblem.Kind, type: ContractProblem.Kind,
                                        shape: ContractProblem.Kind)) -> [ContractProblem] {
        let function = coreAI.function
        guard let tensor else {
            return [ContractProblem(kinds.missing, "its \(function) function has no \(role) named \(spec.name)")]
        }
        if tensor.scalarType == "image" {
            return [ContractProblem(kinds.type, "its \(role) \(spec.name) is an image, not a \(spec.scalarType) array")]
        }
        var found: [ContractProblem] = []
        if tensor.scalarType != spec.scalarType {
            found.append(ContractProblem(kinds.type, "its \(role) \(spec.name) is \(tensor.scalarType), not \(spec.scalarType)"))
        }
        if !spec.accepts(tensor.shape) {
            found.append(ContractProblem(kinds.shape, "its \(role) \(spec.name) has shape \(tensor.shapeText), "
                                         + "not \(spec.shapeText)"))
        }
        return found
    }
}

/// One reason the app cannot use a model: a stable kind (the codes tests/fixtures/contract-outcomes.json
/// uses, for both the app and `kerasml package`) and the sentence the app and the CLI show.
public struct ContractProblem: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        // Core ML
        case inputs, inputSize = "input_size", colour, notClassifier = "not_classifier", labels, probabilities, ink
        // Core AI
        case function, input, inputType = "input_type", inputShape = "input_shape"
        case output, outputType = "output_type", outputShape = "output_shape", labelsMetadata = "labels_metadata"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(kind.rawValue): \(message)" }
}
