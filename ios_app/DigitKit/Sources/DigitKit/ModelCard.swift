import Foundation

/// The model's metadata, as the app's info panel shows it.
///
/// Read from the Core ML model's standard fields and from the keys `kerasml convert` writes
/// (`com.kerasml.*`); models from elsewhere simply have fewer rows.
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

    /// How the model expects its pixels (`com.kerasml.preprocessing`).
    public struct Preprocessing: Codable, Equatable, Sendable {
        public var height: Int
        public var width: Int
        public var channels: Int
        public var scale: Double?
        public var ink: String?
    }

    public init(summary: String = "", author: String = "", version: String = "", license: String = "",
                creatorDefined: [String: String] = [:]) {
        self.summary = summary
        self.author = author
        self.version = version
        self.license = license
        testAccuracy = creatorDefined["com.kerasml.test_accuracy"].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        dataset = creatorDefined["com.kerasml.dataset"]
        architecture = creatorDefined["com.kerasml.architecture"]
        kerasmlVersion = creatorDefined["com.kerasml.kerasml_version"]
        preprocessing = creatorDefined["com.kerasml.preprocessing"].flatMap {
            try? JSONDecoder().decode(Preprocessing.self, from: Data($0.utf8))
        }
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

    /// Why the app's preparation (28x28 grayscale, white ink on black) may not suit this model.
    public var warnings: [String] {
        guard let p = preprocessing else { return [] }
        var found: [String] = []
        if p.width != MNISTNormalizer.side || p.height != MNISTNormalizer.side || p.channels != 1 {
            found.append("The model expects \(p.width)x\(p.height) images with \(p.channels) channel(s); the app draws 28x28 grayscale.")
        }
        if let ink = p.ink, ink != "white-on-black" {
            found.append("The model was trained on \(ink) images; the app draws white ink on black.")
        }
        return found
    }
}
