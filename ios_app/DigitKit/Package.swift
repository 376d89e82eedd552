// swift-tools-version:5.9
// DigitKit: the demo app's drawing and photo preparation, app contract, ranking and labels, in
// Foundation only so that `swift test` checks it on Linux. DigitDemo.xcodeproj references this
// folder as a local Swift package (XCLocalSwiftPackageReference) and links the DigitKit product,
// so the app sees only what is `public` here.
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
