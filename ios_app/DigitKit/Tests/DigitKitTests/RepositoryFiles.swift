import Foundation
import XCTest
@testable import DigitKit

/// Files of the kerasml repository the tests read: ios_app/DigitKit/Tests/DigitKitTests/ is four
/// levels below the repository root.
enum RepositoryFiles {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func data(_ relativePath: String) throws -> Data {
        let url = root.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw XCTSkip("\(url.path) is missing: run the tests from a kerasml checkout")
        }
        return data
    }

    static func contract() throws -> AppContract {
        try AppContract(json: data("ios_app/\(AppContract.fileName)"))
    }

    /// The contract's `drawing` section, which every `Sketch` is made with.
    static func drawing() throws -> AppContract.Drawing {
        try contract().drawing
    }
}
