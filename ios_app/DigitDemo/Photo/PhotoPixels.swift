import CoreGraphics
import UIKit

/// A photo as the bytes DigitKit's `PhotoPreparer` takes: upright RGBX, row by row.
///
/// This is the app's decoding step (as pillow's is for `kerasml predict`): it applies the photo's
/// orientation and, for speed, draws a camera-sized picture at most `maxSide` px on its longer
/// side. Everything after it is DigitKit's and checked on Linux against the Python code. Decoding a
/// 12-megapixel photo takes a visible moment, so the app does it in a detached task: UIKit's image
/// drawing "may be called from any thread" (UIGraphicsPushContext's documentation).
struct PhotoPixels: Sendable {
    let pixels: [UInt8]
    let width: Int
    let height: Int
    static let channels = 4

    /// A camera picture in a form that may leave the main thread: its decoded bitmap (CGImage is
    /// Sendable) and how to turn it upright (`UIImage.Orientation`'s raw value).
    struct Picture: Sendable {
        let bitmap: CGImage
        let scale: CGFloat
        let orientation: Int

        /// Nil for an image without a bitmap (the camera's always has one).
        init?(_ image: UIImage) {
            guard let bitmap = image.cgImage else { return nil }
            self.bitmap = bitmap
            self.scale = image.scale
            self.orientation = image.imageOrientation.rawValue
        }

        var image: UIImage {
            UIImage(cgImage: bitmap, scale: scale, orientation: UIImage.Orientation(rawValue: orientation) ?? .up)
        }
    }

    /// A photo file's data (JPEG, HEIC, PNG, ...); nil when it is not an image.
    init?(data: Data, maxSide: CGFloat = 1024) {
        guard let image = UIImage(data: data) else { return nil }
        self.init(drawing: image, maxSide: maxSide)
    }

    init?(_ picture: Picture, maxSide: CGFloat = 1024) {
        self.init(drawing: picture.image, maxSide: maxSide)
    }

    private init?(drawing image: UIImage, maxSide: CGFloat) {
        let size = image.size
        guard size.width >= 1, size.height >= 1 else { return nil }
        let scale = min(1, maxSide / max(size.width, size.height))
        let width = max(1, Int((size.width * scale).rounded()))
        let height = max(1, Int((size.height * scale).rounded()))
        var bytes = [UInt8](repeating: 0, count: width * height * Self.channels)
        let drawn: Bool = bytes.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: width, height: height,
                                          bitsPerComponent: 8, bytesPerRow: width * Self.channels,
                                          space: CGColorSpaceCreateDeviceRGB(),
                                          bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
            // UIKit draws upright (it applies imageOrientation); flip Core Graphics' y axis for it.
            context.translateBy(x: 0, y: CGFloat(height))
            context.scaleBy(x: 1, y: -1)
            UIGraphicsPushContext(context)
            image.draw(in: CGRect(x: 0, y: 0, width: width, height: height))
            UIGraphicsPopContext()
            return true
        }
        guard drawn else { return nil }
        self.pixels = bytes
        self.width = width
        self.height = height
    }
}
