import Foundation

/// One class the model considered, with its probability (0...1).
public struct Prediction: Equatable, Sendable, Identifiable {
    public var label: String
    public var confidence: Double
    public var id: String { label }

    public init(label: String, confidence: Double) {
        self.label = label
        self.confidence = confidence
    }
}

public enum Ranking {
    /// The `count` most probable labels, most probable first. Ties go to the smaller label
    /// (numerically for numbers), so the order never depends on dictionary order; a probability
    /// that is not a number ranks last.
    public static func top(_ probabilities: [String: Double], count: Int = 3) -> [Prediction] {
        let ranked = probabilities.map { Prediction(label: $0.key, confidence: $0.value.isNaN ? -1 : $0.value) }
            .sorted { a, b in
                if a.confidence != b.confidence { return a.confidence > b.confidence }
                return labelOrder(a.label, b.label)
            }
        return ranked.prefix(max(count, 0)).map {
            Prediction(label: $0.label, confidence: min(max($0.confidence, 0), 1))
        }
    }

    /// Core ML's dictionary keys are Int64 for the digit models and String for others.
    public static func top(_ probabilities: [Int64: Double], count: Int = 3) -> [Prediction] {
        top(Dictionary(uniqueKeysWithValues: probabilities.map { (String($0.key), $0.value) }), count: count)
    }

    private static func labelOrder(_ a: String, _ b: String) -> Bool {
        switch (Int(a), Int(b)) {
        case let (x?, y?): return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        default: return a < b
        }
    }
}
