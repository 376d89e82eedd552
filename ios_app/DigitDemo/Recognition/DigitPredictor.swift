import DigitKit
import Foundation

/// Chooses and loads the model the app reads digits with: Core AI on iOS 27 and later when the app
/// bundles a Core AI model, Core ML otherwise (DigitKit's `FrameworkChoice`). A Core AI model that
/// fails to load or does not fit the contract is not fatal: the app falls back to Core ML and the
/// model card says why.
///
/// What "fits" means is the app contract (app-contract.json, bundled), the same file
/// `kerasml package` checks models against; DigitKit's `AppContract` does the check. All Core ML
/// code is in `CoreMLDigitClassifier`, all Core AI code in `CoreAIDigitClassifier`.
enum DigitPredictor {
    /// The loaded model, ready to be asked.
    struct Loaded: Sendable {
        let classifier: any DigitClassifying
        let card: ModelCard
        let contract: AppContract
    }

    static func contract(in bundle: Bundle = .main) throws -> AppContract {
        guard let url = bundle.url(forResource: "app-contract", withExtension: "json") else {
            throw ModelLoadingError.noContract("not in the app bundle")
        }
        do {
            return try AppContract(json: Data(contentsOf: url))
        } catch {
            throw ModelLoadingError.noContract(error.localizedDescription)
        }
    }

    /// Loads the contract and the model and checks the model: slow, so the caller runs it off the main thread.
    static func load() async throws -> Loaded {
        let contract = try contract()
        let spec = contract.coreAI
        let coreAIModel = Bundle.main.url(forResource: spec.resourceName, withExtension: spec.resourceExtension,
                                          subdirectory: spec.bundleFolder)
        var choice = FrameworkChoice.choose(coreAIAvailable: coreAIAvailable, coreAIBundled: coreAIModel != nil,
                                            minimumIOS: spec.minimumIOS)
        if choice == .coreAI, let coreAIModel {
            do {
                return try await loadCoreAI(contract, url: coreAIModel)
            } catch {
                choice = .coreAIFailed(error.localizedDescription)
            }
        }
        let classifier = try CoreMLDigitClassifier(contract: contract, frameworkNote: choice.note)
        return Loaded(classifier: classifier, card: classifier.card, contract: contract)
    }

    /// Whether this build has Core AI (an iOS 27 SDK) and this device runs it.
    private static var coreAIAvailable: Bool {
        #if canImport(CoreAI)
        if #available(iOS 27, *) { return true }
        #endif
        return false
    }

    private static func loadCoreAI(_ contract: AppContract, url: URL) async throws -> Loaded {
        #if canImport(CoreAI)
        if #available(iOS 27, *) {
            let (classifier, card) = try await CoreAIDigitClassifier.load(contract: contract, url: url)
            return Loaded(classifier: classifier, card: card, contract: contract)
        }
        #endif
        throw ModelLoadingError.unsuitable(["Core AI needs iOS \(contract.coreAI.minimumIOS)"])
    }
}

/// Why the app has no model to read digits with (or, for Core AI, why it fell back to Core ML).
enum ModelLoadingError: LocalizedError {
    case noContract(String)
    case missing(String)
    case unsuitable([String])
    case noProbabilities

    var errorDescription: String? {
        switch self {
        case let .noContract(reason):
            return "The app's model contract (app-contract.json) is missing or broken: \(reason)."
        case let .missing(name):
            return "No model in the app. Put \(name).mlmodel into the DigitDemo folder "
                + "(kerasml package MODEL.mlmodel) and run again."
        case let .unsuitable(reasons):
            return "The model does not suit this app: \(reasons.joined(separator: "; "))."
        case .noProbabilities:
            return "The model returned no class probabilities."
        }
    }
}
