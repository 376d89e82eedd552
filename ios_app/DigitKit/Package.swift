// swift-tools-version:5.9
// DigitKit: the demo app's drawing preparation, ranking and labels, in Foundation only so that
// `swift test` checks it on Linux. The SwiftUI / Core ML app in DigitDemo/ is not part of this
// package; DigitDemo.xcodeproj compiles these sources into the app target.
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
