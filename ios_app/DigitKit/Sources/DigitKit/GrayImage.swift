import Foundation

/// An 8-bit grayscale bitmap, row by row from the top, white ink (255) on black (0).
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// An all-black image.
    public init(width: Int, height: Int) {
        precondition(width >= 0 && height >= 0, "image size must not be negative")
        self.width = width
        self.height = height
        self.pixels = Array(repeating: 0, count: width * height)
    }

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height, "expected \(width * height) pixels, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    /// True when no pixel has any ink.
    public var isBlank: Bool { !pixels.contains { $0 > 0 } }

    /// The smallest rectangle holding every pixel above 0, or nil for a blank image.
    public var inkBounds: PixelRect? {
        var minX = width, minY = height, maxX = -1, maxY = -1
        for y in 0..<height {
            for x in 0..<width where pixels[y * width + x] > 0 {
                minX = min(minX, x); maxX = max(maxX, x)
                minY = min(minY, y); maxY = max(maxY, y)
            }
        }
        guard maxX >= 0 else { return nil }
        return PixelRect(x: minX, y: minY, width: maxX - minX + 1, height: maxY - minY + 1)
    }

    /// The pixels inside `rect`, which must lie within the image.
    public func cropped(to rect: PixelRect) -> GrayImage {
        var out = GrayImage(width: rect.width, height: rect.height)
        for y in 0..<rect.height {
            let source = (rect.y + y) * width + rect.x
            out.pixels.replaceSubrange(y * rect.width..<(y + 1) * rect.width,
                                       with: pixels[source..<source + rect.width])
        }
        return out
    }
}

/// A rectangle of whole pixels.
public struct PixelRect: Equatable, Sendable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}
