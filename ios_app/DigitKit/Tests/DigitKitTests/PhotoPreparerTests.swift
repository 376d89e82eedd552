import XCTest
@testable import DigitKit

final class PhotoPreparerTests: XCTestCase {
    /// A dark "1" on paper that is lit from the left: 230 falling to 120 across the photo.
    private func shadowedOne(width: Int = 120, height: Int = 90) -> GrayImage {
        var photo = GrayImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                let paper = 230 - 110 * x / width
                let ink = (55...62).contains(x) && (20...70).contains(y)
                photo[x, y] = UInt8(ink ? paper / 4 : paper)
            }
        }
        return photo
    }

    func testDarkInkUnderUnevenLightBecomesAnMNISTDigit() {
        let result = PhotoPreparer.prepare(shadowedOne())
        XCTAssertTrue(result.inverted)
        XCTAssertEqual(result.notes.first, "inverted: dark ink on light paper")
        XCTAssertEqual(result.steps.map(\.name), ["grayscale", "illumination corrected", "ink mask", "cropped", "centred"])
        let corrected = result.steps[1].image
        XCTAssertLessThan(corrected.pixels.filter { $0 > 40 }.count, 8 * 51 + 60, "the shadow must not become ink")
        XCTAssertEqual(result.image.inkBounds?.height, 20)
        XCTAssertEqual(result.image.pixels.max(), 255)
    }

    func testLightInkOnADarkGroundIsNotInverted() {
        var photo = shadowedOne()
        photo.pixels = photo.pixels.map { 255 - $0 }
        let result = PhotoPreparer.prepare(photo)
        XCTAssertFalse(result.inverted)
        XCTAssertEqual(result.image, PhotoPreparer.prepare(shadowedOne()).image)
    }

    func testBlankPaperAndInkOnlyAtTheEdgeGiveNoDigit() {
        let blank = PhotoPreparer.prepare(GrayImage(width: 50, height: 40, pixels: Array(repeating: 200, count: 2000)))
        XCTAssertTrue(blank.image.isBlank)
        XCTAssertTrue(blank.notes.last!.hasPrefix("no ink found"))
        var edge = GrayImage(width: 50, height: 40, pixels: Array(repeating: 200, count: 2000))
        for y in 0..<40 { edge[0, y] = 20; edge[1, y] = 20 }          // the table's edge, not a digit
        XCTAssertTrue(PhotoPreparer.prepare(edge).image.isBlank)
    }

    func testLargePhotosAreScaledDownAndRGBIsLuma() throws {
        let gray = shadowedOne(width: 600, height: 300)
        let rgb: [UInt8] = gray.pixels.flatMap { [$0, $0, $0, 7] }            // RGBX, the fourth byte ignored
        let result = try PhotoPreparer.prepare(pixels: rgb, width: 600, height: 300, channels: 4)
        XCTAssertEqual(result.steps[0].image, gray)
        XCTAssertEqual(result.notes.first, "scaled down from 600x300 to 256x128")
        XCTAssertEqual(result.steps[1].image.width, 256)
        XCTAssertEqual(PhotoPreparer.grayscale([255, 0, 0, 0, 255, 0, 0, 0, 255], width: 3, height: 1, channels: 3).pixels,
                       [76, 150, 29])                                  // 299, 587, 114 per mille, half up
    }

    func testBadInputIsAnError() {
        XCTAssertThrowsError(try PhotoPreparer.prepare(pixels: [1, 2, 3], width: 2, height: 2, channels: 1))
        XCTAssertThrowsError(try PhotoPreparer.prepare(pixels: [], width: 0, height: 0, channels: 1))
        XCTAssertThrowsError(try PhotoPreparer.prepare(pixels: [1, 2], width: 1, height: 1, channels: 2))
    }

    func testBuildingBlocks() {
        XCTAssertEqual(PhotoPreparer.rankValue([5, 1, 9, 3], percent: 50), 3)      // index (4 - 1) * 50 / 100 = 1
        XCTAssertEqual(PhotoPreparer.rankValue([5, 1, 9, 3], percent: 99), 5)
        let bimodal = GrayImage(width: 10, height: 1, pixels: [10, 12, 11, 10, 200, 210, 205, 11, 12, 10])
        let t = PhotoPreparer.otsuThreshold(bimodal)
        XCTAssertTrue((12..<200).contains(t), "\(t)")
        let mask: [Bool] = [true, false, false, true,
                            false, true, false, true,
                            false, false, false, false]
        let found = PhotoPreparer.components(mask, width: 4, height: 3)
        XCTAssertEqual(found.map(\.size), [2, 2])                       // diagonal neighbours join
        XCTAssertEqual(found.map(\.left), [0, 3])
        var spot = GrayImage(width: 5, height: 5)
        spot[2, 2] = 9
        XCTAssertEqual(PhotoPreparer.windowFilter(spot, radius: 1, takeMax: true).pixels.filter { $0 == 9 }.count, 9)
        XCTAssertTrue(PhotoPreparer.windowFilter(spot, radius: 1, takeMax: false).isBlank)
    }
}
