import Foundation

/// What came of reading a drawing or a photo; `AppContract.display(_:source:)` says what the screen
/// shows for each, in the contract's words.
public enum Reading: Equatable, Sendable {
    /// Nothing drawn, or no photo yet: the model is not asked.
    case empty
    /// The ink is too small a speck to be a digit (a tap, a dot): the model is not asked.
    case tooSmall
    /// A photo with no ink away from its edges (blank paper, ink too faint): the model is not asked.
    case noInk
    /// The model answered, but its best guess is below the confidence threshold: "no digit".
    case unsure([Prediction])
    /// A digit, with the ranked predictions (best first).
    case digit([Prediction])
    /// The photo could not be decoded as an image.
    case unreadable
    /// The model failed (rare: a framework error), with the reason.
    case failed(String)

    public var predictions: [Prediction] {
        switch self {
        case let .unsure(top), let .digit(top): return top
        case .empty, .tooSmall, .noInk, .unreadable, .failed: return []
        }
    }

    public var isDigit: Bool {
        if case .digit = self { return true }
        return false
    }
}

/// The thresholds that decide between a digit and "no digit".
public struct ConfidencePolicy: Equatable, Sendable {
    /// The best class must have at least this probability.
    public var minimumConfidence: Double
    /// The ink's bounding box must span at least this fraction of the canvas side.
    public var minimumInkExtent: Double

    /// The app takes its values from the contract (`AppContract.policy`), not from defaults here.
    public init(minimumConfidence: Double, minimumInkExtent: Double) {
        self.minimumConfidence = minimumConfidence
        self.minimumInkExtent = minimumInkExtent
    }

    /// Whether a drawing is worth asking the model about: `.empty`, `.tooSmall`, or nil (ask it).
    public func precheck(_ raster: GrayImage) -> Reading? {
        guard let bounds = raster.inkBounds else { return .empty }
        let extent = Double(max(bounds.width, bounds.height)) / Double(max(raster.width, raster.height))
        return extent < minimumInkExtent ? .tooSmall : nil
    }

    /// The reading for the model's ranked predictions (best first).
    public func reading(for ranked: [Prediction]) -> Reading {
        guard let best = ranked.first, best.confidence >= minimumConfidence else { return .unsure(ranked) }
        return .digit(ranked)
    }
}
