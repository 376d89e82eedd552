import XCTest
@testable import DigitKit

/// The contract's Core AI section, the check the app makes of a Core AI model, its model card,
/// and the choice between Core AI and Core ML.
final class CoreAITests: XCTestCase {
    static let digitLabels = (0...9).map(String.init)

    /// A model like the one `kerasml convert --format aimodel` writes.
    static func fitting(_ contract: AppContract) -> CoreAITraits {
        CoreAITraits(
            functionNames: ["classify"],
            inputs: ["image": .init(scalarType: "float32", shape: [-1, 28, 28, 1])],
            outputs: ["labelProbabilities": .init(scalarType: "float32", shape: [-1, 10])],
            metadata: [contract.coreAI.labelsKey: #"["0","1","2","3","4","5","6","7","8","9"]"#,
                       contract.coreAI.versionKey: "1.0",
                       contract.metadataKeys.preprocessing: #"{"height":28,"width":28,"channels":1,"ink":"white-on-black"}"#])
    }

    func testTheContractDescribesWhatDigitKitFeedsCoreAI() throws {
        let coreAI = try RepositoryFiles.contract().coreAI
        XCTAssertEqual(coreAI.minimumIOS, 27)
        XCTAssertEqual(coreAI.function, "classify")
        XCTAssertEqual(coreAI.input.name, "image")
        XCTAssertEqual(coreAI.input.scalarType, "float32")
        let tensor = ModelInput.coreAITensor(GrayImage(width: MNISTNormalizer.side, height: MNISTNormalizer.side))
        XCTAssertTrue(coreAI.input.accepts(tensor.shape), "the contract must accept the [1, 28, 28, 1] DigitKit makes")
        XCTAssertEqual(coreAI.input.shape, [nil, 28, 28, 1])
        XCTAssertEqual(coreAI.input.range, [0, 255])
        XCTAssertEqual(coreAI.output.name, "labelProbabilities")
        XCTAssertEqual(coreAI.output.shape, [nil, 10])
        XCTAssertEqual(try RepositoryFiles.contract().model.labels.count, 10)
        XCTAssertTrue(coreAI.labelsKey.hasPrefix("com.kerasml."))
        XCTAssertTrue(coreAI.versionKey.hasPrefix("com.kerasml."))
    }

    func testWhereTheModelLiesInTheProjectAndTheBundle() throws {
        let coreAI = try RepositoryFiles.contract().coreAI
        XCTAssertEqual(coreAI.file, "DigitDemo/CoreAIModels/DigitClassifier.aimodel")
        XCTAssertEqual(coreAI.bundleFolder, "CoreAIModels")
        XCTAssertEqual(coreAI.resourceName, "DigitClassifier")
        XCTAssertEqual(coreAI.resourceExtension, "aimodel")
        XCTAssertEqual(try RepositoryFiles.contract().modelName, coreAI.resourceName, "one name for both models")
    }

    func testAModelLikeKerasmlsFits() throws {
        let contract = try RepositoryFiles.contract()
        XCTAssertEqual(contract.problems(withCoreAI: Self.fitting(contract)), [])
        XCTAssertEqual(contract.coreAILabels(in: Self.fitting(contract).metadata), Self.digitLabels)
        var fixedBatch = Self.fitting(contract)
        fixedBatch.inputs["image"]?.shape[0] = 1
        fixedBatch.outputs["labelProbabilities"]?.shape[0] = 1
        XCTAssertEqual(contract.problems(withCoreAI: fixedBatch), [], "a batch of exactly 1 is what the app passes")
    }

    func testEveryMismatchIsNamed() throws {
        let contract = try RepositoryFiles.contract()
        var traits = Self.fitting(contract)
        traits.inputs["image"] = .init(scalarType: "float16", shape: [4, 32, 32, 3])
        traits.outputs["labelProbabilities"] = .init(scalarType: "float32", shape: [-1, 2])
        traits.metadata[contract.coreAI.labelsKey] = #"["cat","dog"]"#
        traits.metadata[contract.metadataKeys.preprocessing] = #"{"height":32,"width":32,"channels":3,"ink":"black-on-white"}"#
        let refusals = contract.refusals(ofCoreAI: traits)
        XCTAssertEqual(refusals.map(\.kind), [.inputType, .inputShape, .outputShape, .labels, .ink], "\(refusals)")
        XCTAssertEqual(refusals[1].message, "its input image has shape [4, 32, 32, 3], not [N, 28, 28, 1]")
        XCTAssertEqual(refusals[2].message, "its output labelProbabilities has shape [?, 2], not [N, 10]")

        traits = Self.fitting(contract)
        traits.inputs = ["pixels": .init(scalarType: "image", shape: [])]
        traits.outputs = [:]
        traits.metadata[contract.coreAI.labelsKey] = nil
        XCTAssertEqual(contract.refusals(ofCoreAI: traits).map(\.kind), [.input, .output, .labelsMetadata])
        traits.metadata[contract.coreAI.labelsKey] = "0,1,2"
        XCTAssertEqual(contract.problems(withCoreAI: traits).last,
                       "its com.kerasml.labels metadata is not a JSON list of labels")
        traits.functionNames = ["main"]
        XCTAssertEqual(contract.problems(withCoreAI: traits), ["it has no function named classify (it has main)"])
    }

    func testTheCardReadsCoreAIsMetadata() throws {
        let contract = try RepositoryFiles.contract()
        var metadata = Self.fitting(contract).metadata
        metadata[contract.metadataKeys.testAccuracy] = "0.9881"
        let card = ModelCard.coreAI(contract: contract, description: "Handwritten digit classifier",
                                    author: "kerasml contributors", license: "MIT", creatorDefined: metadata)
        XCTAssertEqual(card.framework, .coreAI)
        XCTAssertEqual(card.version, "1.0")
        XCTAssertEqual(card.labels, Self.digitLabels)
        XCTAssertEqual(card.rows.map(\.title),
                       ["Description", "Author", "Version", "License", "Test accuracy", "Labels"])
        XCTAssertEqual(card.summaryLine, "Handwritten digit classifier · version 1.0 · 98.81% test accuracy · Core AI")
        XCTAssertEqual(card.frameworkLine, "Core AI")
        XCTAssertEqual(ModelCard.coreAI(contract: contract).rows, [], "a model from elsewhere has no rows")
    }

    func testTheAppPrefersCoreAIWhereItCan() {
        XCTAssertEqual(FrameworkChoice.choose(coreAIAvailable: true, coreAIBundled: true, minimumIOS: 27), .coreAI)
        XCTAssertEqual(FrameworkChoice.choose(coreAIAvailable: false, coreAIBundled: true, minimumIOS: 27),
                       .coreML(note: "Core AI needs iOS 27"))
        XCTAssertEqual(FrameworkChoice.choose(coreAIAvailable: true, coreAIBundled: false, minimumIOS: 27),
                       .coreML(note: "no Core AI model in the app"))
        XCTAssertEqual(FrameworkChoice.choose(coreAIAvailable: false, coreAIBundled: false, minimumIOS: 27),
                       .coreML(note: nil), "an app without a Core AI model says nothing about it")
        XCTAssertEqual(FrameworkChoice.coreAIFailed("it has no function named classify").note,
                       "the Core AI model could not be used: it has no function named classify")
        XCTAssertNil(FrameworkChoice.coreAI.note)
        let card = ModelCard(contract: try! RepositoryFiles.contract(), frameworkNote: "Core AI needs iOS 27")
        XCTAssertEqual(card.frameworkLine, "Core ML (Core AI needs iOS 27)")
    }

    func testTheOutputRowBecomesLabelProbabilities() throws {
        let row: [Float] = [0.01, 0.9, 0.01, 0.01, 0.01, 0.02, 0.01, 0.01, 0.01, 0.01]
        let probabilities = try ModelInput.labelProbabilities(row, labels: Self.digitLabels)
        XCTAssertEqual(Ranking.top(probabilities, count: 1).map(\.label), ["1"])
        XCTAssertEqual(probabilities["1"] ?? 0, 0.9, accuracy: 1e-6)
        XCTAssertThrowsError(try ModelInput.labelProbabilities(Array(row.prefix(9)), labels: Self.digitLabels))
        XCTAssertThrowsError(try ModelInput.labelProbabilities([0.5, 0.5], labels: ["1", "1"]))
    }

    func testTheTensorIsRowMajorNHWC() {
        var image = GrayImage(width: 3, height: 2)
        image[2, 0] = 255
        image[0, 1] = 7
        let tensor = ModelInput.coreAITensor(image)
        XCTAssertEqual(tensor.shape, [1, 2, 3, 1])
        XCTAssertEqual(tensor.values, [0, 0, 255, 7, 0, 0])
        XCTAssertEqual(ModelInput.grayscaleRows(image).map(Array.init), [[0, 0, 255], [7, 0, 0]])
    }
}
