import XCTest
@testable import DigitKit

/// What the screen shows for each outcome (one wording each, from the contract) and which readings
/// it shows at all (the latest input's, in the current mode).
final class ScreenTests: XCTestCase {
    private let seven = [Prediction(label: "7", confidence: 0.97), Prediction(label: "1", confidence: 0.02)]
    private let unsure = [Prediction(label: "3", confidence: 0.45), Prediction(label: "8", confidence: 0.4)]

    func testEveryOutcomeHasItsWordsFromTheContract() throws {
        let contract = try RepositoryFiles.contract()
        let outcomes: [(Reading, InputSource)] = [
            (.empty, .drawing), (.empty, .photo), (.tooSmall, .drawing), (.noInk, .photo),
            (.unsure(unsure), .drawing), (.digit(seven), .photo), (.unreadable, .photo), (.failed("no memory"), .drawing),
        ]
        for (reading, source) in outcomes {
            let shown = contract.display(reading, source: source)
            XCTAssertFalse(shown.headline.isEmpty, "\(reading)")
            XCTAssertFalse((shown.headline + (shown.detail ?? "")).contains("{"), "a placeholder left in \(shown)")
        }
        XCTAssertEqual(contract.display(.empty, source: .drawing).headline, "Draw a digit")
        XCTAssertEqual(contract.display(.empty, source: .photo).headline, contract.wording.emptyPhoto)
        XCTAssertEqual(contract.display(.digit(seven), source: .drawing),
                       ReadingDisplay(headline: "It's a 7", detail: nil, detailIsError: false, predictions: seven,
                                      highlightsBest: true))
        XCTAssertEqual(contract.display(.unsure(unsure), source: .drawing),
                       ReadingDisplay(headline: "No digit recognised",
                                      detail: "The best guess is under 60% confidence.", detailIsError: false,
                                      predictions: unsure, highlightsBest: false))
        XCTAssertEqual(contract.display(.failed("no memory"), source: .photo).detail,
                       "The model could not read it: no memory")
    }

    func testABlankPhotoSaysNoDigitFoundAndShowsNoEmptyGuesses() throws {
        let shown = try RepositoryFiles.contract().display(.noInk, source: .photo)
        XCTAssertEqual(shown.headline, "No digit found in the photo")
        XCTAssertNil(shown.detail, "not 'the best guess is under 60%' with no guesses")
        XCTAssertEqual(shown.predictions, [])
    }

    func testAFirstPhotoThatFailsIsShown() throws {
        let contract = try RepositoryFiles.contract()
        var session = ReadingSession()
        session.reset(to: .photo)
        let ticket = session.begin()
        XCTAssertTrue(session.isReading)
        XCTAssertTrue(session.finish(ticket, with: .unreadablePhoto))
        let shown = contract.display(session.shown.reading, source: session.source)
        XCTAssertEqual(shown.headline, "Not read")
        XCTAssertEqual(shown.detail, "That photo could not be read as an image.")
        XCTAssertTrue(shown.detailIsError)
        XCTAssertFalse(session.isReading)
    }

    func testASlowPhotoNeverLandsOnTheDrawingScreen() {
        var session = ReadingSession()
        session.reset(to: .photo)
        let slowPhoto = session.begin()
        session.reset(to: .drawing)                        // the user switches to Draw (or taps Clear)
        XCTAssertFalse(session.finish(slowPhoto, with: ReadingResult(reading: .digit(seven), photoNotes: ["cropped"])))
        XCTAssertEqual(session.shown, .empty)
        XCTAssertEqual(session.source, .drawing)
        XCTAssertFalse(session.isReading)
    }

    func testOnlyTheLatestInputsReadingIsShown() {
        var session = ReadingSession()
        let first = session.begin(), second = session.begin()
        XCTAssertTrue(session.finish(second, with: ReadingResult(reading: .digit(seven))))
        XCTAssertFalse(session.finish(first, with: ReadingResult(reading: .tooSmall)), "an older stroke's reading")
        XCTAssertEqual(session.shown.reading, .digit(seven))
    }

    func testAPhotoKeepsItsStepsAndNotesWhateverTheOutcome() {
        var session = ReadingSession(source: .photo)
        let steps = [PhotoStep("grayscale", GrayImage(width: 2, height: 2))]
        let ticket = session.begin()
        session.finish(ticket, with: ReadingResult(reading: .noInk, photoSteps: steps, photoNotes: ["no ink found"]))
        XCTAssertEqual(session.shown.photoSteps, steps)
        XCTAssertEqual(session.shown.photoNotes, ["no ink found"])
    }

    func testTheContractHasEveryWording() throws {
        let json = try JSONSerialization.jsonObject(with: RepositoryFiles.data("ios_app/\(AppContract.fileName)"))
        let wording = try XCTUnwrap((json as? [String: Any])?["wording"] as? [String: String])
        XCTAssertEqual(Set(wording.keys), Set(Wording.keys), "the keys the Python try page reads too")
    }
}
