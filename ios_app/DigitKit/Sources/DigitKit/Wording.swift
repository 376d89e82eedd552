import Foundation

/// Where the input comes from: the screen's two modes.
public enum InputSource: String, CaseIterable, Identifiable, Sendable {
    case drawing = "Draw"
    case photo = "Photo"

    public var id: String { rawValue }
}

/// The contract's `wording`: one sentence for each outcome, shared by the app and `kerasml try`.
/// `{label}` is the digit, `{percent}` the confidence threshold ("60%"), `{reason}` why the model failed.
public struct Wording: Decodable, Equatable, Sendable {
    public var emptyDrawing: String
    public var emptyPhoto: String
    public var tooSmall: String
    public var noInk: String
    public var unsure: String
    public var unsureDetail: String
    public var digit: String
    public var unreadablePhoto: String
    public var unreadablePhotoDetail: String
    public var failed: String
    public var failedDetail: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case emptyDrawing = "empty_drawing", emptyPhoto = "empty_photo", tooSmall = "too_small", noInk = "no_ink"
        case unsure, unsureDetail = "unsure_detail", digit
        case unreadablePhoto = "unreadable_photo", unreadablePhotoDetail = "unreadable_photo_detail"
        case failed, failedDetail = "failed_detail"
    }

    /// The contract's keys, for the tests that keep both sides on the same ones.
    public static let keys = CodingKeys.allCases.map(\.rawValue)
}

/// What the screen shows for a reading: every outcome has a headline, and the detail, the bars and
/// whether the first bar is the answer follow from the outcome alone.
public struct ReadingDisplay: Equatable, Sendable {
    public var headline: String
    public var detail: String?
    /// The detail says something went wrong (shown in red).
    public var detailIsError: Bool
    public var predictions: [Prediction]
    /// The first bar is the answer (highlighted).
    public var highlightsBest: Bool
}

extension AppContract {
    /// What the screen shows for `reading` in `source` mode, in the contract's words.
    public func display(_ reading: DigitKit.Reading, source: InputSource) -> ReadingDisplay {
        let words = wording
        func show(_ headline: String, _ detail: String? = nil, error: Bool = false) -> ReadingDisplay {
            ReadingDisplay(headline: headline, detail: detail, detailIsError: error,
                           predictions: reading.predictions, highlightsBest: reading.isDigit)
        }
        switch reading {
        case .empty: return show(source == .photo ? words.emptyPhoto : words.emptyDrawing)
        case .tooSmall: return show(words.tooSmall)
        case .noInk: return show(words.noInk)
        case .unsure:
            return show(words.unsure, fill(words.unsureDetail, ["percent": LabelFormat.percent(self.reading.minimumConfidence)]))
        case let .digit(top): return show(fill(words.digit, ["label": top.first?.label ?? "?"]))
        case .unreadable: return show(words.unreadablePhoto, words.unreadablePhotoDetail, error: true)
        case let .failed(reason): return show(words.failed, fill(words.failedDetail, ["reason": reason]), error: true)
        }
    }

    private func fill(_ template: String, _ values: [String: String]) -> String {
        values.reduce(template) { text, pair in text.replacingOccurrences(of: "{\(pair.key)}", with: pair.value) }
    }
}
