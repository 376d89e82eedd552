import CoreGraphics
import UIKit

/// A UIImage as the bytes DigitKit's `PhotoPreparer` takes: upright RGBX, row by row.
///
/// This is the app's decoding step (as pillow's is for `kerasml predict`): it applies the photo's
/// orientation and, for speed, draws a camera-sized picture at most `maxSide` px on its longer
/// side. Everything after it is DigitKit's and checked on Linux against the Python code.
struct PhotoPixels {
    let pixels: [UInt8]
    let width: Int
    let height: Int
    static let channels = 4

    init?(_ image: UIImage, maxSide: CGFloat = 1024) {
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
