import XCTest
@testable import DigitKit

/// The reading pipeline the app runs for both frameworks, with a stand-in classifier, on the shared
/// fixtures kerasml's Python code generated.
final class ReaderTests: XCTestCase {
    /// Answers like a good model on the fixtures: 0.9 for the digit whose prepared pixels it is
    /// shown, a flat 0.1 for anything else; records what it was shown.
    struct StandIn: DigitClassifying {
        let answers: [[UInt8]: String]
        let log = Log()

        actor Log {
            private(set) var shown: [GrayImage] = []
            func append(_ image: GrayImage) { shown.append(image) }
        }

        func probabilities(for image: GrayImage) async throws -> [String: Double] {
            await log.append(image)
            let answer = answers[image.pixels]
            return Dictionary(uniqueKeysWithValues: (0...9).map(String.init).map {
                ($0, answer == nil ? 0.1 : ($0 == answer ? 0.9 : 0.1 / 9))
            })
        }
    }

    struct Broken: DigitClassifying, LocalizedError {
        func probabilities(for image: GrayImage) async throws -> [String: Double] { throw self }
        var errorDescription: String? { "the Neural Engine went away" }
    }

    private func standIn() throws -> (StandIn, SharedFixtureTests.Fixtures) {
        let fixtures = try SharedFixtureTests.loadFixtures()
        var answers: [[UInt8]: String] = [:]
        for item in fixtures.stroke_cases { if let label = item.label { answers[Self.bytes(item.expected)] = label } }
        for item in fixtures.photo_cases { if let label = item.label { answers[Self.bytes(item.expected)] = label } }
        return (StandIn(answers: answers), fixtures)
    }

    static func bytes(_ rows: [[Int]]) -> [UInt8] { rows.flatMap { $0.map(UInt8.init) } }

    func testDrawingsAreRasterisedPrecheckedPreparedAndJudged() async throws {
        let (model, fixtures) = try standIn()
        let contract = try RepositoryFiles.contract()
        let reader = DigitReader(classifier: model, contract: contract)
        var asked = 0
        for item in fixtures.stroke_cases {
            let sketch = Sketch(canvasSide: item.canvas_side,
                                strokes: item.strokes.map { $0.map { CanvasPoint(x: $0[0], y: $0[1]) } },
                                drawing: contract.drawing)
            let result = await reader.read(sketch)
            XCTAssertEqual(result.photoSteps, [], item.name)
            switch (item.name, item.label) {
            case ("empty", _):
                XCTAssertEqual(result, ReadingResult(reading: .empty), item.name)
            case ("dot", _):
                XCTAssertEqual(result, ReadingResult(reading: .tooSmall), "a tap never reaches the model")
            case let (_, label?):
                asked += 1
                XCTAssertEqual(result.modelInput?.pixels, Self.bytes(item.expected), "\(item.name): not kerasml's pixels")
                XCTAssertEqual(result.reading.predictions.first?.label, label, item.name)
                XCTAssertTrue(result.reading.isDigit, item.name)
                XCTAssertEqual(result.reading.predictions.count, 3, "the contract's top 3")
            case (_, nil):
                asked += 1
                XCTAssertEqual(result.reading, .unsure(result.reading.predictions), "\(item.name): a flat answer is no digit")
            }
        }
        let shown = await model.log.shown
        XCTAssertEqual(shown.count, asked, "the model is asked once per drawing that passes the precheck")
    }

    func testPhotosArePreparedAndBlankPaperIsNoDigitWithoutAskingTheModel() async throws {
        let (model, fixtures) = try standIn()
        let reader = DigitReader(classifier: model, contract: try RepositoryFiles.contract())
        for item in fixtures.photo_cases {
            let photo = try SharedFixtureTests.readNetpbm(RepositoryFiles.data("tests/fixtures/\(item.file)"))
            let result = await reader.read(photo: photo.pixels, width: photo.width, height: photo.height,
                                           channels: photo.channels)
            XCTAssertEqual(result.photoNotes, item.notes, item.name)
            XCTAssertEqual(result.photoSteps.map(\.name), item.steps, item.name)
            if let label = item.label {
                XCTAssertEqual(result.reading.predictions.first?.label, label, item.name)
                XCTAssertTrue(result.reading.isDigit, item.name)
                XCTAssertEqual(result.modelInput?.pixels, Self.bytes(item.expected), item.name)
            } else {
                XCTAssertEqual(result.reading, .noInk, "\(item.name): blank paper is not an unsure guess")
                XCTAssertNil(result.modelInput)
            }
        }
        let shown = await model.log.shown
        XCTAssertEqual(shown.count, fixtures.photo_cases.filter { $0.label != nil }.count)
    }

    func testAPhotoThatCannotBeDecodedOrAModelThatFailsIsSaidSo() async throws {
        let contract = try RepositoryFiles.contract()
        let (model, _) = try standIn()
        let unreadable = await DigitReader(classifier: model, contract: contract)
            .read(photo: [1, 2, 3], width: 2, height: 2, channels: 1)
        XCTAssertEqual(unreadable, .unreadablePhoto)

        let seven = Sketch(canvasSide: 1, strokes: [[CanvasPoint(x: 0.2, y: 0.2), CanvasPoint(x: 0.8, y: 0.2),
                                                      CanvasPoint(x: 0.45, y: 0.85)]],
                           drawing: contract.drawing)
        let failed = await DigitReader(classifier: Broken(), contract: contract).read(seven)
        XCTAssertEqual(failed.reading, .failed("the Neural Engine went away"))
        XCTAssertEqual(failed.modelInput, seven.prepared(), "the screen still shows what the model was given")
    }
}
