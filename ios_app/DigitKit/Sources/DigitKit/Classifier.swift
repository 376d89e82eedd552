import Foundation

/// A digit model the app can ask: the app target implements it once with Core ML and once with
/// Core AI; DigitKit's tests use a stand-in.
///
/// `image` is the prepared 28x28 grayscale image (`MNISTNormalizer`, `PhotoPreparer`): both
/// frameworks get the same pixels, Core ML as its 8-bit grayscale image input
/// (`ModelInput.grayscaleRows`), Core AI as a Float32 array of the same values (`ModelInput.coreAITensor`).
public protocol DigitClassifying: Sendable {
    /// Class label -> probability (0...1).
    func probabilities(for image: GrayImage) async throws -> [String: Double]
}

/// The framework that runs the model.
public enum ModelFramework: String, CaseIterable, Sendable {
    case coreML = "Core ML"
    case coreAI = "Core AI"
}

/// Which framework the app uses: Core AI where the system has it (iOS 27 and later, in an app
/// built with an SDK that has it) and a Core AI model is bundled, else Core ML. `note` says why
/// the app fell back, for the model card.
public enum FrameworkChoice: Equatable, Sendable {
    case coreAI
    case coreML(note: String?)

    public static func choose(coreAIAvailable: Bool, coreAIBundled: Bool, minimumIOS: Int) -> FrameworkChoice {
        if !coreAIAvailable { return .coreML(note: coreAIBundled ? "Core AI needs iOS \(minimumIOS)" : nil) }
        return coreAIBundled ? .coreAI : .coreML(note: "no Core AI model in the app")
    }

    /// The Core AI model was chosen but failed to load or does not fit: the app runs Core ML and says why.
    public static func coreAIFailed(_ reason: String) -> FrameworkChoice {
        .coreML(note: "the Core AI model could not be used: \(reason)")
    }

    /// Why the app runs Core ML, for `ModelCard.frameworkNote`; nil for Core AI.
    public var note: String? {
        if case let .coreML(note) = self { return note }
        return nil
    }
}
