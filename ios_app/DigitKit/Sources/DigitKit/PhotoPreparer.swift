import Foundation

/// Prepares a photo of a digit written on paper the way MNIST digits were prepared.
///
/// The same algorithm as `kerasml.preprocess.prepare_photo`, step by step and with the same
/// integer (and, for Otsu's threshold, the same Double) operations, so both give the same pixels
/// (checked by the photo fixtures in tests/fixtures/digits.json):
///
/// 1. grayscale, (299 R + 587 G + 114 B + 500) / 1000;
/// 2. area-averaged down to at most 256 px on the longer side;
/// 3. the ink is the minority in the middle half of the photo: it is light only when the median
///    there lies in the darkest 3/8 of the 1st-99th percentile range (a dark board; blank paper
///    under a gradient counts as paper); light ink is inverted, so the ink is always the dark side;
/// 4. illumination: the paper's light is the grey closing (max then min filter, wider than any
///    pen stroke); each pixel's shortfall from it, as a fraction of it, becomes the ink level;
/// 5. threshold at Otsu's level, at least `minimumContrast`;
/// 6. ink touching the photo's edge (the table, a shadow), wider than any stroke, or a speck is
///    dropped; the largest 8-connected ink component left (and sizeable pieces near it) is
///    cropped, its ink stretched to 255;
/// 7. strokes thinner than MNIST's (1/8 of the longer side) are thickened by grey dilation;
/// 8. `MNISTNormalizer`: fitted to 20x20 and centred by mass in 28x28.
public enum PhotoPreparer {
    public static let workSide = 256
    public static let minimumContrast = 64
    static let keepFraction = 50
    static let reachDivisor = 4

    /// The model input and what happened on the way, for the app to show.
    public struct Result: Equatable, Sendable {
        public var image: GrayImage
        public var steps: [PhotoStep]
        public var notes: [String]
        public var inverted: Bool
    }

    public enum InputError: Error, Equatable {
        case badSize(width: Int, height: Int, channels: Int, bytes: Int)
    }

    /// `pixels`: row by row from the top, `channels` bytes a pixel: 1 (gray), 3 (RGB) or 4 (RGBX,
    /// the fourth byte ignored, as Core Graphics lays out RGBA without alpha).
    public static func prepare(pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> Result {
        guard width > 0, height > 0, [1, 3, 4].contains(channels), pixels.count == width * height * channels else {
            throw InputError.badSize(width: width, height: height, channels: channels, bytes: pixels.count)
        }
        return prepare(grayscale(pixels, width: width, height: height, channels: channels))
    }

    public static func prepare(_ gray: GrayImage) -> Result {
        var notes: [String] = []
        var steps = [PhotoStep("grayscale", gray)]
        var work = gray
        if max(gray.width, gray.height) > workSide {
            let (w, h) = MNISTNormalizer.fittedSize(width: gray.width, height: gray.height, side: workSide)
            work = MNISTNormalizer.resize(gray, width: w, height: h)
            notes.append("scaled down from \(gray.width)x\(gray.height) to \(w)x\(h)")
        }
        let darkInk = inkIsDark(work)
        notes.append(darkInk ? "inverted: dark ink on light paper" : "kept: light ink on a dark ground")
        if !darkInk { work.pixels = work.pixels.map { 255 - $0 } }
        let corrected = flattenIllumination(work)
        steps.append(PhotoStep("illumination corrected", corrected))
        let threshold = max(otsuThreshold(corrected), minimumContrast)
        let mask = corrected.pixels.map { Int($0) > threshold }
        steps.append(PhotoStep("ink mask", GrayImage(width: work.width, height: work.height, pixels: mask.map { $0 ? 255 : 0 })))
        // Ink touching the photo's edge is the table around the paper or a shadow, not the digit; so
        // is "ink" wider than the closing's radius (2 * area / boundary), which no pen stroke can be,
        // and a speck of fewer pixels than that radius (noise).
        let boundary = boundaryPixels(mask, width: work.width, height: work.height)
        let radius = closingRadius(width: work.width, height: work.height)
        let found = components(mask, width: work.width, height: work.height).filter { c in
            c.top > 0 && c.left > 0 && c.bottom < work.height - 1 && c.right < work.width - 1
                && radius <= c.size && 2 * c.size <= radius * c.pixels.reduce(0) { $0 + (boundary[$1] ? 1 : 0) }
        }
        guard !found.isEmpty else {
            notes.append("no ink found away from the photo's edges: the paper is blank or the ink too faint")
            let blank = GrayImage(width: MNISTNormalizer.side, height: MNISTNormalizer.side)
            return Result(image: blank, steps: steps + [PhotoStep("centred", blank)], notes: notes, inverted: darkInk)
        }
        let (cropped, kept) = cropInk(corrected, components: found)
        notes.append("cropped to the largest ink component" + (kept > 1 ? " and \(kept - 1) piece(s) beside it" : "")
                     + (found.count > kept ? " (\(found.count - kept) other piece(s) dropped)" : ""))
        steps.append(PhotoStep("cropped", cropped))
        let (thickened, growth) = thicken(cropped)
        if growth > 0 {
            notes.append("strokes thickened by \(growth) px to MNIST's width")
            steps.append(PhotoStep("thickened", thickened))
        }
        let image = MNISTNormalizer.normalize(thickened)
        steps.append(PhotoStep("centred", image))
        return Result(image: image, steps: steps, notes: notes, inverted: darkInk)
    }

    static func grayscale(_ pixels: [UInt8], width: Int, height: Int, channels: Int) -> GrayImage {
        if channels == 1 { return GrayImage(width: width, height: height, pixels: pixels) }
        var gray = [UInt8](repeating: 0, count: width * height)
        for i in 0..<width * height {
            let r = Int(pixels[i * channels]), g = Int(pixels[i * channels + 1]), b = Int(pixels[i * channels + 2])
            gray[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
        return GrayImage(width: width, height: height, pixels: gray)
    }

    /// The value at index (n - 1) * percent / 100 of the sorted pixels.
    static func rankValue(_ pixels: [UInt8], percent: Int) -> Int {
        var counts = [Int](repeating: 0, count: 256)
        for value in pixels { counts[Int(value)] += 1 }
        let rank = (pixels.count - 1) * percent / 100
        var seen = 0
        for value in 0..<256 {
            seen += counts[value]
            if seen > rank { return value }
        }
        return 255
    }

    /// Judged on the middle half of the photo (rows and columns from 1/4 to 3/4): paper and ink
    /// when the digit is framed, however much table shows around the paper. See step 3.
    static func inkIsDark(_ image: GrayImage) -> Bool {
        let h = image.height, w = image.width
        let middle = image.cropped(to: PixelRect(x: w / 4, y: h / 4, width: w - 2 * (w / 4), height: h - 2 * (h / 4))).pixels
        let low = rankValue(middle, percent: 1), high = rankValue(middle, percent: 99)
        return 8 * (rankValue(middle, percent: 50) - low) >= 3 * (high - low)
    }

    /// Max or min over a (2r+1)-square window clipped at the borders, rows then columns.
    static func windowFilter(_ image: GrayImage, radius: Int, takeMax: Bool) -> GrayImage {
        let w = image.width, h = image.height
        let pick: (UInt8, UInt8) -> UInt8 = takeMax ? { max($0, $1) } : { min($0, $1) }
        var across = image
        for y in 0..<h {
            for x in 0..<w {
                var value = image[x, y]
                for k in max(x - radius, 0)...min(x + radius, w - 1) { value = pick(value, image[k, y]) }
                across[x, y] = value
            }
        }
        var out = across
        for y in 0..<h {
            for x in 0..<w {
                var value = across[x, y]
                for k in max(y - radius, 0)...min(y + radius, h - 1) { value = pick(value, across[x, k]) }
                out[x, y] = value
            }
        }
        return out
    }

    /// Half the side of the window that estimates the paper's light: wider than any pen stroke.
    static func closingRadius(width: Int, height: Int) -> Int { max(4, max(width, height) / 8) }

    /// Set pixels with a four-neighbour unset (outside the image counts as unset).
    static func boundaryPixels(_ mask: [Bool], width w: Int, height h: Int) -> [Bool] {
        func set(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] }
        return (0..<mask.count).map { i in
            let x = i % w, y = i / w
            return mask[i] && !(set(x, y - 1) && set(x, y + 1) && set(x - 1, y) && set(x + 1, y))
        }
    }

    /// Dark ink on any lighting -> ink bright on black (see step 4; never divided by less than
    /// half the brightest paper, so noise on a dark table or in a shadow is not blown up).
    static func flattenIllumination(_ darkInk: GrayImage) -> GrayImage {
        let radius = closingRadius(width: darkInk.width, height: darkInk.height)
        let paper = windowFilter(windowFilter(darkInk, radius: radius, takeMax: true), radius: radius, takeMax: false)
        let floor = max(rankValue(paper.pixels, percent: 99) / 2, 1)
        var out = GrayImage(width: darkInk.width, height: darkInk.height)
        for i in 0..<out.pixels.count {
            let light = Int(paper.pixels[i]), scale = max(light, floor)
            let shortfall = light - Int(darkInk.pixels[i])
            out.pixels[i] = UInt8(min((510 * shortfall + scale) / (2 * scale), 255))
        }
        return out
    }

    /// Otsu's threshold t (ink is > t), as `kerasml.preprocess._otsu_threshold`.
    static func otsuThreshold(_ image: GrayImage) -> Int {
        var hist = [Int](repeating: 0, count: 256)
        for value in image.pixels { hist[Int(value)] += 1 }
        let n = image.pixels.count
        var total = 0
        for (i, count) in hist.enumerated() { total += i * count }
        var best = -1.0, bestT = 0, w0 = 0, s0 = 0
        for t in 0..<255 {
            w0 += hist[t]
            s0 += t * hist[t]
            let w1 = n - w0
            if w0 == 0 || w1 == 0 { continue }
            let diff = Double(s0 * n - total * w0)
            let between = diff * diff / (Double(w0) * Double(w1))
            if between > best { best = between; bestT = t }
        }
        return bestT
    }

    struct Component: Equatable {
        var pixels: [Int]          // flat indices
        var top: Int, left: Int, bottom: Int, right: Int
        var size: Int { pixels.count }
    }

    /// 8-connected components, in raster order of their first pixel.
    static func components(_ mask: [Bool], width: Int, height: Int) -> [Component] {
        var seen = [Bool](repeating: false, count: mask.count)
        var found: [Component] = []
        for start in 0..<mask.count where mask[start] && !seen[start] {
            seen[start] = true
            var stack = [start], members: [Int] = []
            var c = Component(pixels: [], top: height, left: width, bottom: -1, right: -1)
            while let index = stack.popLast() {
                members.append(index)
                let y = index / width, x = index % width
                c.top = min(c.top, y); c.bottom = max(c.bottom, y)
                c.left = min(c.left, x); c.right = max(c.right, x)
                for ny in max(y - 1, 0)...min(y + 1, height - 1) {
                    for nx in max(x - 1, 0)...min(x + 1, width - 1) {
                        let neighbour = ny * width + nx
                        if mask[neighbour] && !seen[neighbour] {
                            seen[neighbour] = true
                            stack.append(neighbour)
                        }
                    }
                }
            }
            c.pixels = members
            found.append(c)
        }
        return found
    }

    /// The largest component not touching the edge (first on ties), sizeable pieces near it,
    /// cropped with their soft edges, ink stretched so the strongest is 255.
    static func cropInk(_ corrected: GrayImage, components all: [Component]) -> (GrayImage, Int) {
        let w = corrected.width, h = corrected.height
        let candidates = all
        var main = candidates[0]
        for c in candidates.dropFirst() where c.size > main.size { main = c }
        let reach = max(main.bottom - main.top + 1, main.right - main.left + 1) / reachDivisor
        let kept = candidates.filter { c in
            c == main || (c.size * keepFraction >= main.size && c.top <= main.bottom + reach
                          && c.bottom >= main.top - reach && c.left <= main.right + reach && c.right >= main.left - reach)
        }
        var keep = GrayImage(width: w, height: h)
        var peak = 0
        for c in kept {
            for index in c.pixels {
                keep.pixels[index] = 1
                peak = max(peak, Int(corrected.pixels[index]))
            }
        }
        let box = PixelRect(x: kept.map(\.left).min()!, y: kept.map(\.top).min()!,
                            width: kept.map(\.right).max()! - kept.map(\.left).min()! + 1,
                            height: kept.map(\.bottom).max()! - kept.map(\.top).min()! + 1)
        let near = windowFilter(keep, radius: 1, takeMax: true).cropped(to: box)
        var ink = corrected.cropped(to: box)
        for i in 0..<ink.pixels.count {
            let value = near.pixels[i] > 0 ? Int(ink.pixels[i]) : 0
            ink.pixels[i] = UInt8(min((510 * value + peak) / (2 * peak), 255))
        }
        return (ink, kept.count)
    }

    /// Grey dilation by r px when strokes are thinner than MNIST's: stroke width ~ 2 * area /
    /// boundary, r = round((longer / 8 - width) / 2), in integers.
    static func thicken(_ crop: GrayImage) -> (GrayImage, Int) {
        let w = crop.width, h = crop.height
        func ink(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < w && y < h && crop[x, y] > 0 }
        var area = 0, boundary = 0
        for y in 0..<h {
            for x in 0..<w where crop[x, y] > 0 {
                area += 1
                if !(ink(x, y - 1) && ink(x, y + 1) && ink(x - 1, y) && ink(x + 1, y)) { boundary += 1 }
            }
        }
        guard boundary > 0 else { return (crop, 0) }
        let longer = max(w, h)
        let radius = max(0, (2 * (longer * boundary - 16 * area) + 16 * boundary) / (32 * boundary))
        guard radius > 0 else { return (crop, 0) }
        var padded = GrayImage(width: w + 2 * radius, height: h + 2 * radius)
        for y in 0..<h { for x in 0..<w { padded[x + radius, y + radius] = crop[x, y] } }
        return (windowFilter(padded, radius: radius, takeMax: true), radius)
    }
}

/// One named intermediate image of the photo preparation, as the app shows it.
public struct PhotoStep: Equatable, Sendable, Identifiable {
    public var name: String
    public var image: GrayImage
    public var id: String { name }

    public init(_ name: String, _ image: GrayImage) {
        self.name = name
        self.image = image
    }
}
