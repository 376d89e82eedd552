import Foundation
import XCTest
@testable import DigitKit

/// Checks DigitKit against the fixtures that kerasml's Python code generated
/// (tests/fixtures/digits.json): every pixel within one grey level.
final class SharedFixtureTests: XCTestCase {
    struct Fixtures: Decodable {
        struct StrokeCase: Decodable {
            let name: String
            let canvas: [Int]
            let line_width: Double
            let strokes: [[[Double]]]
            let ink_pixels: Int
            let expected: [[Int]]
        }
        struct ImageCase: Decodable {
            let name: String
            let image: [[Int]]
            let expected: [[Int]]
        }
        let stroke_cases: [StrokeCase]
        let image_cases: [ImageCase]
    }

    static let fixtureURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("tests/fixtures/digits.json")

    func loadFixtures() throws -> Fixtures {
        guard let data = FileManager.default.contents(atPath: Self.fixtureURL.path) else {
            throw XCTSkip("no shared fixtures at \(Self.fixtureURL.path): run tests/fixtures/generate.py")
        }
        return try JSONDecoder().decode(Fixtures.self, from: data)
    }

    func testStrokeCasesMatchPython() throws {
        let fixtures = try loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.stroke_cases.count, 5)
        for item in fixtures.stroke_cases {
            let strokes = item.strokes.map { $0.map { Point(x: $0[0], y: $0[1]) } }
            let raster = StrokeRasterizer.rasterize(strokes, width: item.canvas[0], height: item.canvas[1],
                                                    lineWidth: item.line_width)
            XCTAssertEqual(raster.pixels.filter { $0 > 0 }.count, item.ink_pixels, "ink pixels of \(item.name)")
            assertWithinOneGreyLevel(MNISTNormalizer.normalize(raster), item.expected, item.name)
        }
    }

    func testImageCasesMatchPython() throws {
        let fixtures = try loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.image_cases.count, 3)
        for item in fixtures.image_cases {
            let image = GrayImage(width: item.image[0].count, height: item.image.count,
                                  pixels: item.image.flatMap { $0.map { UInt8($0) } })
            assertWithinOneGreyLevel(MNISTNormalizer.normalize(image), item.expected, item.name)
        }
    }

    private func assertWithinOneGreyLevel(_ actual: GrayImage, _ expected: [[Int]], _ name: String,
                                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.width, 28, name, file: file, line: line)
        XCTAssertEqual(actual.height, 28, name, file: file, line: line)
        XCTAssertEqual(expected.count, 28, name, file: file, line: line)
        var worst = 0, at = (0, 0)
        for y in 0..<min(28, expected.count) {
            for x in 0..<min(28, expected[y].count) {
                let difference = abs(Int(actual[x, y]) - expected[y][x])
                if difference > worst { worst = difference; at = (x, y) }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1, "\(name): pixel (x \(at.0), y \(at.1)) differs by \(worst) grey levels",
                                 file: file, line: line)
    }
}
