import Foundation

/// The model's metadata, as the app's info panel shows it.
///
/// Read from the Core ML model's standard fields and from the keys `kerasml convert` writes, named
/// in the app contract (`metadata_keys`); models from elsewhere simply have fewer rows.
public struct ModelCard: Equatable, Sendable {
    public var summary: String
    public var author: String
    public var version: String
    public var license: String
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

    public init(contract: AppContract, summary: String = "", author: String = "", version: String = "",
                license: String = "", creatorDefined: [String: String] = [:]) {
        let keys = contract.metadataKeys
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
        ]
        return all.compactMap { title, value in
            guard let value, !value.isEmpty else { return nil }
            return Row(title: title, value: value)
        }
    }

    /// One line for under the results: "Handwritten digits · version 1.0 · 99.12% test accuracy".
    public var summaryLine: String {
        var parts = [summary.isEmpty ? "Unnamed model" : summary]
        if !version.isEmpty { parts.append("version \(version)") }
        if let testAccuracy { parts.append("\(LabelFormat.accuracy(testAccuracy)) test accuracy") }
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
