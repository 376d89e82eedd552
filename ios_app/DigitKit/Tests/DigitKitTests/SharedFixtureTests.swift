import Foundation
import XCTest
@testable import DigitKit

/// Checks DigitKit against the fixtures kerasml's Python code generated (tests/fixtures/digits.json):
/// drawings, images and photos must give the very same 28x28 pixels on both sides.
final class SharedFixtureTests: XCTestCase {
    struct Fixtures: Decodable {
        struct StrokeCase: Decodable {
            let name: String
            /// The digit a person meant; nil for what is not a digit (a dot, a dash, nothing).
            let label: String?
            let canvas_side: Double
            let strokes: [[[Double]]]
            let ink_pixels: Int
            let expected: [[Int]]
        }
        struct ImageCase: Decodable {
            let name: String
            let image: [[Int]]
            let expected: [[Int]]
        }
        struct PhotoCase: Decodable {
            let name: String
            let label: String?
            let file: String
            let notes: [String]
            let steps: [String]
            let expected: [[Int]]
        }
        let stroke_cases: [StrokeCase]
        let image_cases: [ImageCase]
        let photo_cases: [PhotoCase]
    }

    static func loadFixtures() throws -> Fixtures {
        try JSONDecoder().decode(Fixtures.self, from: RepositoryFiles.data("tests/fixtures/digits.json"))
    }

    func testDrawingsAreRasterisedAsTheAppDrawsThemAndMatchPython() throws {
        let fixtures = try Self.loadFixtures()
        let drawing = try RepositoryFiles.drawing()
        XCTAssertGreaterThanOrEqual(fixtures.stroke_cases.count, 8)
        for item in fixtures.stroke_cases {
            let sketch = Sketch(canvasSide: item.canvas_side,
                                strokes: item.strokes.map { $0.map { CanvasPoint(x: $0[0], y: $0[1]) } },
                                drawing: drawing)
            let raster = sketch.rasterized()
            XCTAssertEqual(raster.pixels.filter { $0 > 0 }.count, item.ink_pixels, "ink pixels of \(item.name)")
            assertSamePixels(sketch.prepared(), item.expected, item.name)
        }
    }

    func testImageCasesMatchPython() throws {
        let fixtures = try Self.loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.image_cases.count, 3)
        for item in fixtures.image_cases {
            let image = GrayImage(width: item.image[0].count, height: item.image.count,
                                  pixels: item.image.flatMap { $0.map { UInt8($0) } })
            assertSamePixels(MNISTNormalizer.normalize(image), item.expected, item.name)
        }
    }

    func testPhotoCasesMatchPython() throws {
        let fixtures = try Self.loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.photo_cases.count, 4)
        for item in fixtures.photo_cases {
            let photo = try Self.readNetpbm(RepositoryFiles.data("tests/fixtures/\(item.file)"))
            let result = try PhotoPreparer.prepare(pixels: photo.pixels, width: photo.width, height: photo.height,
                                                   channels: photo.channels)
            XCTAssertEqual(result.notes, item.notes, item.name)
            XCTAssertEqual(result.steps.map(\.name), item.steps, item.name)
            assertSamePixels(result.image, item.expected, item.name)
        }
    }

    /// Both frameworks are given the same pixels: the Core AI tensor holds, as Float32 in [1, 28, 28, 1],
    /// exactly the bytes the Core ML path copies into its grayscale pixel buffer, which are the
    /// 28x28 arrays kerasml.preprocess makes of every drawing, image and photo in the fixtures.
    func testTheCoreAITensorHoldsWhatCoreMLIsFedOnEveryFixture() throws {
        let fixtures = try Self.loadFixtures()
        let drawing = try RepositoryFiles.drawing()
        var prepared: [(String, GrayImage, [[Int]])] = fixtures.stroke_cases.map { item in
            (item.name, Sketch(canvasSide: item.canvas_side,
                               strokes: item.strokes.map { $0.map { CanvasPoint(x: $0[0], y: $0[1]) } },
                               drawing: drawing).prepared(),
             item.expected)
        }
        prepared += fixtures.image_cases.map { item in
            (item.name, MNISTNormalizer.normalize(GrayImage(width: item.image[0].count, height: item.image.count,
                                                            pixels: item.image.flatMap { $0.map { UInt8($0) } })),
             item.expected)
        }
        for item in fixtures.photo_cases {
            let photo = try Self.readNetpbm(RepositoryFiles.data("tests/fixtures/\(item.file)"))
            let result = try PhotoPreparer.prepare(pixels: photo.pixels, width: photo.width, height: photo.height,
                                                   channels: photo.channels)
            prepared.append((item.name, result.image, item.expected))
        }
        XCTAssertGreaterThanOrEqual(prepared.count, 15)
        for (name, image, expected) in prepared {
            let tensor = ModelInput.coreAITensor(image)
            let coreMLBytes = ModelInput.grayscaleRows(image).flatMap { $0 }
            XCTAssertEqual(tensor.shape, [1, 28, 28, 1], name)
            XCTAssertEqual(tensor.values, coreMLBytes.map(Float.init), name)
            XCTAssertEqual(tensor.values, expected.flatMap { $0.map(Float.init) }, "\(name): not kerasml's pixels")
            XCTAssertTrue(tensor.values.allSatisfy { (0...255).contains($0) && $0 == $0.rounded() }, name)
        }
    }

    /// Binary PGM (P5) or PPM (P6) with a maximum of 255, as tests/fixtures/generate.py writes them.
    static func readNetpbm(_ data: Data) throws -> (pixels: [UInt8], width: Int, height: Int, channels: Int) {
        let bytes = [UInt8](data)
        var fields: [String] = [], index = 0
        while fields.count < 4 && index < bytes.count {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A { index += 1 }
            var field = ""
            while index < bytes.count, bytes[index] != 0x20, bytes[index] != 0x0A {
                field.append(Character(UnicodeScalar(bytes[index]))); index += 1
            }
            fields.append(field)
        }
        index += 1                                              // the one whitespace after 255
        guard fields.count == 4, let width = Int(fields[1]), let height = Int(fields[2]), fields[3] == "255",
              fields[0] == "P5" || fields[0] == "P6" else {
            throw XCTSkip("not a binary PGM/PPM file: \(fields)")
        }
        let channels = fields[0] == "P6" ? 3 : 1
        return (Array(bytes[index...]), width, height, channels)
    }

    private func assertSamePixels(_ actual: GrayImage, _ expected: [[Int]], _ name: String,
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
        XCTAssertEqual(worst, 0, "\(name): pixel (x \(at.0), y \(at.1)) differs by \(worst) grey levels",
                       file: file, line: line)
    }
}
