import XCTest
@testable import DigitKit

/// tests/fixtures/contract-outcomes.json: model descriptions and the verdict each must get against the
/// app contract. `kerasml package` runs the same file, so the app and the CLI accept and refuse alike.
final class ContractOutcomeTests: XCTestCase {
    struct Outcomes: Decodable {
        struct Case: Decodable {
            let name: String
            let format: String
            let verdict: String
            let reasons: [String]?
            let model: Model
        }
        struct Model: Decodable {
            // Core ML
            let inputs: [Input]?
            let labels: [String]?
            let probabilities: String?
            // Core AI
            let functions: [String: Function]?
            // Both
            let metadata: [String: String]
        }
        struct Input: Decodable {
            let name: String
            let type: String
            let width: Int?
            let height: Int?
            let colour: String?
        }
        struct Function: Decodable {
            let inputs: [String: Tensor]
            let outputs: [String: Tensor]
        }
        struct Tensor: Decodable {
            let scalar_type: String
            let shape: [Int]
        }
        let reasons: [String: String]
        let cases: [Case]
    }

    private func outcomes() throws -> Outcomes {
        try JSONDecoder().decode(Outcomes.self, from: RepositoryFiles.data("tests/fixtures/contract-outcomes.json"))
    }

    /// The check's verdict on one described model: the kinds of problem found.
    private func refusals(_ item: Outcomes.Case, _ contract: AppContract) throws -> [ContractProblem] {
        let model = item.model
        switch item.format {
        case "mlmodel":
            let inputs = try XCTUnwrap(model.inputs, item.name)
            let image = inputs.first { $0.type == "image" }.map {
                ModelTraits.Image(width: $0.width ?? 0, height: $0.height ?? 0, colour: $0.colour ?? "")
            }
            return contract.refusals(of: ModelTraits(inputCount: inputs.count, imageInput: image, labels: model.labels,
                                                     hasProbabilities: model.probabilities == "dictionary",
                                                     metadata: model.metadata))
        case "aimodel":
            let functions = try XCTUnwrap(model.functions, item.name)
            let function = functions[contract.coreAI.function]
            func traits(_ tensors: [String: Outcomes.Tensor]?) -> [String: CoreAITraits.Tensor] {
                (tensors ?? [:]).mapValues { CoreAITraits.Tensor(scalarType: $0.scalar_type, shape: $0.shape) }
            }
            return contract.refusals(ofCoreAI: CoreAITraits(functionNames: functions.keys.sorted(),
                                                            inputs: traits(function?.inputs),
                                                            outputs: traits(function?.outputs), metadata: model.metadata))
        default:
            XCTFail("\(item.name): unknown format \(item.format)")
            return []
        }
    }

    func testEveryDescribedModelGetsItsVerdict() throws {
        let contract = try RepositoryFiles.contract()
        let outcomes = try outcomes()
        XCTAssertGreaterThanOrEqual(outcomes.cases.count, 20)
        for item in outcomes.cases {
            let found = try refusals(item, contract)
            switch item.verdict {
            case "accepted":
                XCTAssertEqual(found, [], "\(item.name) (\(item.format)) should be accepted")
            case "refused":
                XCTAssertEqual(Set(found.map(\.kind.rawValue)), Set(item.reasons ?? []),
                               "\(item.name) (\(item.format)): \(found.map(\.message))")
                XCTAssertFalse(found.isEmpty, item.name)
            default:
                XCTFail("\(item.name): unknown verdict \(item.verdict)")
            }
        }
    }

    func testEveryKindOfProblemIsExplainedAndExercised() throws {
        let outcomes = try outcomes()
        let kinds = Set(ContractProblem.Kind.allCases.map(\.rawValue))
        XCTAssertEqual(Set(outcomes.reasons.keys), kinds, "the fixture's list of reasons is DigitKit's")
        XCTAssertEqual(Set(outcomes.cases.flatMap { $0.reasons ?? [] }), kinds, "a case for every kind")
        XCTAssertEqual(Set(outcomes.cases.map(\.format)), ["mlmodel", "aimodel"])
        for format in ["mlmodel", "aimodel"] {
            XCTAssertTrue(outcomes.cases.contains { $0.format == format && $0.verdict == "accepted" }, format)
        }
    }
}
