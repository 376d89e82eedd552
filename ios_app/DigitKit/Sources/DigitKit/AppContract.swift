import Foundation

/// What a model must look like for the app, decoded from `ios_app/app-contract.json`: the same file
/// `kerasml package` checks models against. The app bundles it and checks the model it loads with
/// `problems(with:)`; DigitKit's tests decode the repository's copy, so a change there that the app
/// cannot honour fails `swift test`.
public struct AppContract: Decodable, Equatable, Sendable {
    public struct Model: Decodable, Equatable, Sendable {
        public var file: String
        public var minimumIOS: Int
        public var input: Input
        public var labels: [String]

        enum CodingKeys: String, CodingKey {
            case file, input, labels
            case minimumIOS = "minimum_ios"
        }
    }

    public struct Input: Decodable, Equatable, Sendable {
        public var width: Int
        public var height: Int
        public var colour: String
        public var ink: String
    }

    public struct MetadataKeys: Decodable, Equatable, Sendable {
        public var testAccuracy: String
        public var dataset: String
        public var architecture: String
        public var kerasmlVersion: String
        public var preprocessing: String

        enum CodingKeys: String, CodingKey {
            case testAccuracy = "test_accuracy", dataset, architecture
            case kerasmlVersion = "kerasml_version", preprocessing
        }
    }

    public struct Reading: Decodable, Equatable, Sendable {
        public var minimumConfidence: Double
        public var minimumInkExtent: Double
        public var top: Int

        enum CodingKeys: String, CodingKey {
            case minimumConfidence = "minimum_confidence", minimumInkExtent = "minimum_ink_extent", top
        }
    }

    /// How a drawing is shown and how it becomes the model's raster; `Sketch` reads these.
    public struct Drawing: Decodable, Equatable, Sendable {
        /// Side of the square bitmap a drawing is rasterised into for the model, in pixels.
        public var rasterSide: Int
        /// The model's strokes are 1/strokeDivisor of the longer side of the drawing's extent wide ...
        public var strokeDivisor: Int
        /// ... and at least this wide, in raster pixels.
        public var minimumStroke: Double
        /// On screen, strokes are 1/screenStrokeDivisor of the canvas side wide.
        public var screenStrokeDivisor: Int

        enum CodingKeys: String, CodingKey {
            case rasterSide = "raster_side", strokeDivisor = "stroke_divisor", minimumStroke = "minimum_stroke"
            case screenStrokeDivisor = "screen_stroke_divisor"
        }
    }

    public var model: Model
    /// The Core AI model the app prefers on iOS 27 and later, when one is bundled (CoreAIContract.swift).
    public var coreAI: CoreAIModel
    public var metadataKeys: MetadataKeys
    public var reading: Reading
    public var drawing: Drawing
    /// What the screen says for each outcome (Wording.swift).
    public var wording: Wording

    enum CodingKeys: String, CodingKey {
        case model, reading, drawing, wording
        case coreAI = "core_ai"
        case metadataKeys = "metadata_keys"
    }

    public static let fileName = "app-contract.json"

    public init(json: Data) throws {
        self = try JSONDecoder().decode(AppContract.self, from: json)
    }

    /// The model's name in the app bundle: "DigitClassifier" for "DigitDemo/DigitClassifier.mlmodel".
    public var modelName: String {
        let last = model.file.split(separator: "/").last.map(String.init) ?? model.file
        return last.hasSuffix(".mlmodel") ? String(last.dropLast(".mlmodel".count)) : last
    }

    /// The confidence threshold and speck size that decide between a digit and "no digit".
    public var policy: ConfidencePolicy {
        ConfidencePolicy(minimumConfidence: reading.minimumConfidence, minimumInkExtent: reading.minimumInkExtent)
    }

    /// Every reason the app cannot use a Core ML model (empty when it fits), the checks `kerasml package` makes.
    public func problems(with traits: ModelTraits) -> [String] {
        refusals(of: traits).map(\.message)
    }

    /// `problems(with:)` with a stable kind for each, as tests/fixtures/contract-outcomes.json names them.
    public func refusals(of traits: ModelTraits) -> [ContractProblem] {
        guard let image = traits.imageInput, traits.inputCount == 1 else {
            return [ContractProblem(.inputs, "it must take exactly one image input")]
        }
        var found: [ContractProblem] = []
        if image.width != model.input.width || image.height != model.input.height {
            found.append(ContractProblem(.inputSize, "its input is \(image.width)x\(image.height), "
                                         + "not \(model.input.width)x\(model.input.height)"))
        }
        if image.colour != model.input.colour {
            found.append(ContractProblem(.colour, "its input is \(image.colour), not \(model.input.colour)"))
        }
        if let labels = traits.labels {
            found += labelProblems(labels)
        } else {
            found.append(ContractProblem(.notClassifier, "it is not a classifier (no class labels)"))
        }
        if traits.labels != nil && !traits.hasProbabilities {
            found.append(ContractProblem(.probabilities, "it has no probability dictionary output"))
        }
        found += inkProblems(traits.metadata)
        return found
    }

    func labelProblems(_ labels: [String]) -> [ContractProblem] {
        guard labels.sorted() == model.labels.sorted() else {
            return [ContractProblem(.labels, "its labels are \(labels.joined(separator: ", ")), "
                                    + "not \(model.labels.joined(separator: ", "))")]
        }
        return []
    }

    /// The ink the model was trained on, read on its own: a preprocessing record with only `ink` counts.
    func inkProblems(_ metadata: [String: String]) -> [ContractProblem] {
        struct Ink: Decodable { var ink: String? }
        let record = metadata[metadataKeys.preprocessing].flatMap { try? JSONDecoder().decode(Ink.self, from: Data($0.utf8)) }
        guard let ink = record?.ink, ink != model.input.ink else { return [] }
        return [ContractProblem(.ink, "it was trained on \(ink) images but the app gives it \(model.input.ink) images")]
    }

    /// The preprocessing metadata kerasml writes, or nil for models from elsewhere.
    public func preprocessing(in metadata: [String: String]) -> ModelCard.Preprocessing? {
        metadata[metadataKeys.preprocessing].flatMap {
            try? JSONDecoder().decode(ModelCard.Preprocessing.self, from: Data($0.utf8))
        }
    }
}

/// What the app learns about a Core ML model, in plain values so the check runs on Linux.
public struct ModelTraits: Equatable, Sendable {
    public struct Image: Equatable, Sendable {
        public var width: Int
        public var height: Int
        /// "grayscale" or "rgb", as in the contract.
        public var colour: String

        public init(width: Int, height: Int, colour: String) {
            self.width = width
            self.height = height
            self.colour = colour
        }
    }

    public var inputCount: Int
    public var imageInput: Image?
    /// The class labels as text, nil when the model is not a classifier.
    public var labels: [String]?
    public var hasProbabilities: Bool
    public var metadata: [String: String]

    public init(inputCount: Int, imageInput: Image?, labels: [String]?, hasProbabilities: Bool,
                metadata: [String: String] = [:]) {
        self.inputCount = inputCount
        self.imageInput = imageInput
        self.labels = labels
        self.hasProbabilities = hasProbabilities
        self.metadata = metadata
    }
}
