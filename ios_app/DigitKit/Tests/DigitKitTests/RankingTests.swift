import XCTest
@testable import DigitKit

final class RankingTests: XCTestCase {
    func testTopThreeMostProbableFirst() {
        let probabilities: [Int64: Double] = [0: 0.01, 1: 0.7, 2: 0.05, 7: 0.2, 9: 0.04]
        let top = Ranking.top(probabilities, count: 3)
        XCTAssertEqual(top.map(\.label), ["1", "7", "2"])
        XCTAssertEqual(top[0].confidence, 0.7)
    }

    func testTiesGoToTheSmallerLabelNumerically() {
        let top = Ranking.top(["10": 0.25, "9": 0.25, "2": 0.25, "b": 0.25], count: 4)
        XCTAssertEqual(top.map(\.label), ["2", "9", "10", "b"])
    }

    func testCountLargerThanClassesAndNotANumber() {
        let top = Ranking.top(["a": .nan, "b": 0.5], count: 5)
        XCTAssertEqual(top.map(\.label), ["b", "a"])
        XCTAssertEqual(top[1].confidence, 0)
        XCTAssertEqual(Ranking.top([String: Double](), count: 3), [])
        XCTAssertEqual(Ranking.top(["a": 1], count: 0), [])
    }

    func testConfidenceThreshold() {
        let policy = ConfidencePolicy(minimumConfidence: 0.6, minimumInkExtent: 0.1)
        let sure = [Prediction(label: "3", confidence: 0.61), Prediction(label: "8", confidence: 0.3)]
        let unsure = [Prediction(label: "3", confidence: 0.45), Prediction(label: "8", confidence: 0.4)]
        XCTAssertEqual(policy.reading(for: sure), .digit(sure))
        XCTAssertEqual(policy.reading(for: unsure), .unsure(unsure))
        XCTAssertEqual(policy.reading(for: []), .unsure([]))
        XCTAssertTrue(policy.reading(for: sure).isDigit)
    }

    func testEmptyAndTinyDrawingsNeverReachTheModel() throws {
        let contract = try RepositoryFiles.contract()
        let policy = contract.policy
        var sketch = Sketch(canvasSide: 300, drawing: contract.drawing)
        XCTAssertEqual(policy.precheck(sketch.rasterized()), .empty)
        sketch.beginStroke(at: CanvasPoint(x: 150, y: 150))             // a tap: a dot
        XCTAssertEqual(policy.precheck(sketch.rasterized()), .tooSmall)
        sketch.extendStroke(to: CanvasPoint(x: 150, y: 200))
        XCTAssertNil(policy.precheck(sketch.rasterized()))
    }

    func testLabelFormatting() {
        XCTAssertEqual(LabelFormat.percent(0.973), "97%")
        XCTAssertEqual(LabelFormat.percent(1), "100%")
        XCTAssertEqual(LabelFormat.percent(0.001), "<1%")
        XCTAssertEqual(LabelFormat.percent(0), "0%")
        XCTAssertEqual(LabelFormat.percent(.nan), "–")
        XCTAssertEqual(LabelFormat.accuracy(0.9912), "99.12%")
        XCTAssertEqual(LabelFormat.accuracy(0.9), "90.00%")
        XCTAssertEqual(LabelFormat.accuracy(0.90051), "90.05%")
        XCTAssertEqual(LabelFormat.label(Int64(7)), "7")
        XCTAssertEqual(LabelFormat.label(" "), "?")
    }

    func testModelCardFromKerasmlMetadata() throws {
        let card = ModelCard(contract: try RepositoryFiles.contract(), summary: "Handwritten digit classifier", author: "kerasml", version: "1.0",
                             license: "MIT", creatorDefined: [
                                "com.kerasml.test_accuracy": "0.9912",
                                "com.kerasml.dataset": "mnist",
                                "com.kerasml.preprocessing":
                                    #"{"height":28,"width":28,"channels":1,"scale":0.00392156862745098,"bias":[0.0],"ink":"white-on-black"}"#,
                             ])
        XCTAssertEqual(card.testAccuracy, 0.9912)
        XCTAssertEqual(card.rows.map(\.title), ["Description", "Author", "Version", "License", "Test accuracy", "Dataset"])
        XCTAssertEqual(card.rows[4].value, "99.12%")
        XCTAssertEqual(card.preprocessing?.ink, "white-on-black")
        XCTAssertEqual(card.warnings, [])
        XCTAssertEqual(card.framework, .coreML)
        XCTAssertEqual(card.summaryLine, "Handwritten digit classifier · version 1.0 · 99.12% test accuracy · Core ML")
    }

    func testModelCardFromAnotherModel() throws {
        let card = ModelCard(contract: try RepositoryFiles.contract(), summary: "", creatorDefined: [
            "com.kerasml.test_accuracy": "n/a",
            "com.kerasml.preprocessing": #"{"height":32,"width":32,"channels":3,"ink":"black-on-white"}"#,
        ])
        XCTAssertNil(card.testAccuracy)
        XCTAssertTrue(card.rows.isEmpty)
        XCTAssertEqual(card.summaryLine, "Unnamed model · Core ML")
        XCTAssertEqual(card.warnings.count, 2)
    }
}
