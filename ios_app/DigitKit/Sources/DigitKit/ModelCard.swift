import Foundation

/// The model's metadata, as the app's info panel shows it, and which framework runs it.
///
/// Read from the loaded model's standard fields (Core ML: description, author, version, licence;
/// Core AI: description, author, licence) and from the keys `kerasml convert` writes, named in the
/// app contract (`metadata_keys`; a Core AI model's version and labels under `core_ai`); models
/// from elsewhere simply have fewer rows.
public struct ModelCard: Equatable, Sendable {
    /// The framework that reads the digits.
    public var framework: ModelFramework
    /// Why the app runs Core ML although it prefers Core AI ("Core AI needs iOS 27"), if it does.
    public var frameworkNote: String?
    public var summary: String
    public var author: String
    public var version: String
    public var license: String
    /// The class labels, in the model's order.
    public var labels: [String]
    public var testAccuracy: Double?
    public var dataset: String?
    public var architecture: String?
    public var kerasmlVersion: String?
    public var preprocessing: Preprocessing?
    /// What the app gives the model, from the contract, for `warnings`.
    public var appInput: AppContract.Input

    /// How the model expects its pixels (`com.kerasml.preprocessing`).
    public struct Preprocessing: Codable, Equatable, Sendable {
        public var height: Int
        public var width: Int
        public var channels: Int
        public var scale: Double?
        public var ink: String?
    }

    public init(contract: AppContract, framework: ModelFramework = .coreML, frameworkNote: String? = nil,
                summary: String = "", author: String = "", version: String = "", license: String = "",
                labels: [String] = [], creatorDefined: [String: String] = [:]) {
        let keys = contract.metadataKeys
        self.framework = framework
        self.frameworkNote = frameworkNote
        self.labels = labels
        self.summary = summary
        self.author = author
        self.version = version
        self.license = license
        appInput = contract.model.input
        testAccuracy = creatorDefined[keys.testAccuracy].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        dataset = creatorDefined[keys.dataset]
        architecture = creatorDefined[keys.architecture]
        kerasmlVersion = creatorDefined[keys.kerasmlVersion]
        preprocessing = contract.preprocessing(in: creatorDefined)
    }

    /// The card of a Core AI model: its asset metadata has a description, author and licence but
    /// no version or labels, which kerasml writes as creator-defined metadata (`core_ai` keys).
    public static func coreAI(contract: AppContract, description: String = "", author: String = "",
                              license: String = "", creatorDefined: [String: String] = [:]) -> ModelCard {
        ModelCard(contract: contract, framework: .coreAI, summary: description, author: author,
                  version: creatorDefined[contract.coreAI.versionKey] ?? "", license: license,
                  labels: contract.coreAILabels(in: creatorDefined) ?? [], creatorDefined: creatorDefined)
    }

    /// "Core AI", or "Core ML (Core AI needs iOS 27)".
    public var frameworkLine: String {
        framework.rawValue + (frameworkNote.map { " (\($0))" } ?? "")
    }

    /// One line of the info panel.
    public struct Row: Equatable, Sendable, Identifiable {
        public var title: String
        public var value: String
        public var id: String { title }
    }

    /// Title and value rows for the info panel, in a fixed order, skipping empty values.
    public var rows: [Row] {
        let all: [(String, String?)] = [
            ("Description", summary), ("Author", author), ("Version", version), ("License", license),
            ("Test accuracy", testAccuracy.map(LabelFormat.accuracy)), ("Dataset", dataset),
            ("Architecture", architecture), ("kerasml", kerasmlVersion),
            ("Labels", labels.joined(separator: ", ")),
        ]
        return all.compactMap { title, value in
            guard let value, !value.isEmpty else { return nil }
            return Row(title: title, value: value)
        }
    }

    /// One line for under the results: "Handwritten digits · version 1.0 · 99.12% test accuracy · Core AI".
    public var summaryLine: String {
        var parts = [summary.isEmpty ? "Unnamed model" : summary]
        if !version.isEmpty { parts.append("version \(version)") }
        if let testAccuracy { parts.append("\(LabelFormat.accuracy(testAccuracy)) test accuracy") }
        parts.append(framework.rawValue)
        return parts.joined(separator: " · ")
    }

    /// Why the app's preparation (the contract's input) may not suit this model.
    public var warnings: [String] {
        guard let p = preprocessing else { return [] }
        var found: [String] = []
        let channels = appInput.colour == "grayscale" ? 1 : 3
        if p.width != appInput.width || p.height != appInput.height || p.channels != channels {
            found.append("The model expects \(p.width)x\(p.height) images with \(p.channels) channel(s); "
                         + "the app gives it \(appInput.width)x\(appInput.height) \(appInput.colour).")
        }
        if let ink = p.ink, ink != appInput.ink {
            found.append("The model was trained on \(ink) images; the app gives it \(appInput.ink) images.")
        }
        return found
    }
}
