import Foundation
import XCTest
@testable import DigitKit

/// The app contract (ios_app/app-contract.json) is the one statement of what a model must look
/// like; these tests fail when it says something DigitKit cannot honour.
final class AppContractTests: XCTestCase {
    func testDigitKitMakesWhatTheContractPromisesTheModel() throws {
        let contract = try RepositoryFiles.contract()
        XCTAssertEqual(contract.model.input.width, MNISTNormalizer.side)
        XCTAssertEqual(contract.model.input.height, MNISTNormalizer.side)
        XCTAssertEqual(contract.model.input.colour, "grayscale")        // GrayImage is one channel
        XCTAssertEqual(contract.model.input.ink, "white-on-black")      // what the normaliser makes
        XCTAssertEqual(contract.modelName, "DigitClassifier")
        XCTAssertTrue(contract.model.file.hasSuffix(".mlmodel"))
        XCTAssertEqual(contract.model.labels, (0...9).map(String.init))
        // decoded as the file says, read here independently of AppContract's decoder
        let raw = try JSONSerialization.jsonObject(with: RepositoryFiles.data("ios_app/\(AppContract.fileName)"))
        let reading = try XCTUnwrap((raw as? [String: Any])?["reading"] as? [String: Any])
        XCTAssertEqual(contract.reading.top, try XCTUnwrap(reading["top"] as? Int))
        XCTAssertEqual(contract.reading.minimumConfidence, try XCTUnwrap(reading["minimum_confidence"] as? Double))
        let drawing = try XCTUnwrap((raw as? [String: Any])?["drawing"] as? [String: Any])
        XCTAssertEqual(contract.drawing.rasterSide, try XCTUnwrap(drawing["raster_side"] as? Int))
        XCTAssertEqual(contract.drawing.strokeDivisor, try XCTUnwrap(drawing["stroke_divisor"] as? Int))
        XCTAssertEqual(contract.drawing.minimumStroke, try XCTUnwrap(drawing["minimum_stroke"] as? Double))
        XCTAssertEqual(contract.drawing.screenStrokeDivisor, try XCTUnwrap(drawing["screen_stroke_divisor"] as? Int))
        for key in [contract.metadataKeys.testAccuracy, contract.metadataKeys.dataset, contract.metadataKeys.preprocessing] {
            XCTAssertTrue(key.hasPrefix("com.kerasml."), key)
        }
    }

    /// A sketch has no numbers of its own: a contract whose `drawing` says otherwise gives another raster
    /// side, other model and screen stroke widths and another minimum.
    func testASketchDrawsWithTheNumbersOfTheContractItIsGiven() throws {
        let file = try RepositoryFiles.data("ios_app/\(AppContract.fileName)")
        var raw = try XCTUnwrap(JSONSerialization.jsonObject(with: file) as? [String: Any])
        let ours = try AppContract(json: file).drawing
        raw["drawing"] = ["raster_side": ours.rasterSide / 2, "stroke_divisor": ours.strokeDivisor + 2,
                          "minimum_stroke": ours.minimumStroke * 3, "screen_stroke_divisor": ours.screenStrokeDivisor * 2]
        let other = try AppContract(json: JSONSerialization.data(withJSONObject: raw)).drawing
        XCTAssertNotEqual(other.rasterSide, ours.rasterSide)

        let line = [[CanvasPoint(x: 100, y: 20), CanvasPoint(x: 100, y: 180)]]
        var rasters: [GrayImage] = [], screenWidths: [Double] = []
        for drawing in [ours, other] {
            let sketch = Sketch(canvasSide: 200, strokes: line, drawing: drawing)
            XCTAssertEqual(sketch.lineWidthFraction, 1 / Double(drawing.screenStrokeDivisor), accuracy: 1e-12)
            XCTAssertEqual(sketch.lineWidth, 200 / Double(drawing.screenStrokeDivisor), accuracy: 1e-9)
            let raster = sketch.rasterized()
            XCTAssertEqual([raster.width, raster.height], [drawing.rasterSide, drawing.rasterSide])
            let scale = Double(drawing.rasterSide) / 200
            let modelWidth = max(160 * scale / Double(drawing.strokeDivisor), drawing.minimumStroke)
            XCTAssertEqual(sketch.modelStrokeWidth(line.map { $0.map { CanvasPoint(x: $0.x * scale, y: $0.y * scale) } }),
                           modelWidth, accuracy: 1e-9)
            XCTAssertEqual(Double(try XCTUnwrap(raster.inkBounds).width), modelWidth, accuracy: 1)
            XCTAssertEqual(sketch.modelStrokeWidth([[CanvasPoint(x: 3, y: 3)]]), drawing.minimumStroke)
            rasters.append(raster)
            screenWidths.append(sketch.lineWidth)
        }
        XCTAssertNotEqual(rasters[0], rasters[1])
        XCTAssertNotEqual(screenWidths[0], screenWidths[1])
    }

    func testTheThresholdsComeFromTheContract() throws {
        let contract = try RepositoryFiles.contract()
        XCTAssertEqual(contract.policy.minimumConfidence, contract.reading.minimumConfidence)
        XCTAssertEqual(contract.policy.minimumInkExtent, contract.reading.minimumInkExtent)
        let top = [Prediction(label: "3", confidence: contract.reading.minimumConfidence)]
        XCTAssertTrue(contract.policy.reading(for: top).isDigit)
    }

    static func fitting(_ contract: AppContract) -> ModelTraits {
        ModelTraits(inputCount: 1, imageInput: .init(width: 28, height: 28, colour: "grayscale"),
                    labels: (0...9).map(String.init).reversed(), hasProbabilities: true,
                    metadata: [contract.metadataKeys.preprocessing: #"{"height":28,"width":28,"channels":1,"ink":"white-on-black"}"#])
    }

    func testAModelLikeKerasmlsFits() throws {
        let contract = try RepositoryFiles.contract()
        XCTAssertEqual(contract.problems(with: Self.fitting(contract)), [])
    }

    func testEveryMismatchIsNamed() throws {
        let contract = try RepositoryFiles.contract()
        var traits = Self.fitting(contract)
        traits.imageInput = .init(width: 32, height: 32, colour: "rgb")
        traits.labels = ["cat", "dog"]
        traits.hasProbabilities = false
        traits.metadata[contract.metadataKeys.preprocessing] = #"{"height":32,"width":32,"channels":3,"ink":"black-on-white"}"#
        let problems = contract.problems(with: traits)
        XCTAssertEqual(problems.count, 5, "\(problems)")
        XCTAssertEqual(contract.refusals(of: traits).map(\.kind), [.inputSize, .colour, .labels, .probabilities, .ink])
        XCTAssertTrue(problems[0].contains("32x32, not 28x28"))
        XCTAssertTrue(problems[1].contains("rgb, not grayscale"))
        XCTAssertTrue(problems[2].contains("cat, dog"))
        XCTAssertTrue(problems[4].contains("black-on-white"))
        traits.labels = nil
        XCTAssertTrue(contract.problems(with: traits).contains("it is not a classifier (no class labels)"))
        traits.inputCount = 2
        XCTAssertEqual(contract.problems(with: traits), ["it must take exactly one image input"])
    }

    func testAChangedContractChangesTheCheck() throws {
        var contract = try RepositoryFiles.contract()
        contract.model.input.width = 32
        XCTAssertEqual(contract.problems(with: Self.fitting(contract)), ["its input is 28x28, not 32x28"])
    }

    func testABrokenContractIsAnError() {
        XCTAssertThrowsError(try AppContract(json: Data("{}".utf8)))
        XCTAssertThrowsError(try AppContract(json: Data(#"{"model": 1}"#.utf8)))
    }
}
