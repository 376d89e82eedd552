// swift-tools-version:6.0
// DigitKit: the demo app's drawing and photo preparation, app contract, ranking and labels, in
// Foundation only so that `swift test` checks it on Linux. DigitDemo.xcodeproj references this
// folder as a local Swift package (XCLocalSwiftPackageReference) and links the DigitKit product,
// so the app sees only what is `public` here. Tools version 6.0: the Swift 6 language mode, with its
// complete data-race checking, as the app target (SWIFT_VERSION = 6.0).
import PackageDescription

let package = Package(
    name: "DigitKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "DigitKit", targets: ["DigitKit"]),
    ],
    targets: [
        .target(name: "DigitKit"),
        .testTarget(name: "DigitKitTests", dependencies: ["DigitKit"]),
    ]
)
