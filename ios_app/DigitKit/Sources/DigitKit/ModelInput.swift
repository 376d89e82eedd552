import Foundation

/// What each framework is given for a prepared image, and how their answers become label
/// probabilities: one place, so the Core ML and Core AI paths see the very same pixels.
public enum ModelInput {
    /// The Core ML input: the image's rows, top first, one byte a pixel, as the app copies them into
    /// the one-component 8-bit pixel buffer of the model's grayscale image input. Core ML then
    /// applies the model's own scale and bias to these 0-255 values.
    public static func grayscaleRows(_ image: GrayImage) -> [ArraySlice<UInt8>] {
        (0..<image.height).map { image.pixels[$0 * image.width..<($0 + 1) * image.width] }
    }

    /// The Core AI input: the same 0-255 pixel values as Float32, shape [1, height, width, 1]
    /// (NHWC: one image, one channel), row-major; the model's scale and bias happen inside it.
    public static func coreAITensor(_ image: GrayImage) -> InputTensor {
        InputTensor(shape: [1, image.height, image.width, 1], values: image.pixels.map(Float.init))
    }

    /// A Core AI classifier's output row (probabilities in label order) as label -> probability.
    public static func labelProbabilities(_ values: [Float], labels: [String]) throws -> [String: Double] {
        guard values.count == labels.count, Set(labels).count == labels.count else {
            throw OutputError.labelCount(values: values.count, labels: labels.count)
        }
        return Dictionary(uniqueKeysWithValues: zip(labels, values.map(Double.init)))
    }

    public enum OutputError: LocalizedError, Equatable {
        case labelCount(values: Int, labels: Int)

        public var errorDescription: String? {
            switch self {
            case let .labelCount(values, labels):
                return "the model returned \(values) probabilities for \(labels) distinct labels"
            }
        }
    }
}

/// Float32 values in row-major order with their shape, ready for an `NDArray(scalars:shape:)`.
public struct InputTensor: Equatable, Sendable {
    public let shape: [Int]
    public let values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}
