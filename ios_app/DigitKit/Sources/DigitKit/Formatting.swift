import Foundation

public enum LabelFormat {
    /// A probability as a whole percentage for the confidence bars: "97%", "<1%", "100%".
    public static func percent(_ probability: Double) -> String {
        guard probability.isFinite else { return "–" }
        let value = min(max(probability, 0), 1) * 100
        if value > 0 && value < 0.5 { return "<1%" }
        return "\(Int(value.rounded()))%"
    }

    /// A test accuracy with two decimals: 0.9912 -> "99.12%".
    public static func accuracy(_ fraction: Double) -> String {
        let hundredths = Int((min(max(fraction, 0), 1) * 10_000).rounded())
        let fractional = hundredths % 100
        return "\(hundredths / 100).\(fractional < 10 ? "0" : "")\(fractional)%"
    }

    /// A class label as the app shows it: Core ML gives Int64 or String keys; blank becomes "?".
    public static func label(_ key: Any) -> String {
        let text = "\(key)".trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "?" : text
    }
}
