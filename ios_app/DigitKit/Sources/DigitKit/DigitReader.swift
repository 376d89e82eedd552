import Foundation

/// The reading pipeline, the same for both frameworks: a drawing is rasterised, prechecked (empty,
/// a speck), prepared like MNIST and classified; a photo is prepared by `PhotoPreparer` (blank paper
/// is not classified) and classified; the probabilities are ranked and judged by the contract's
/// policy. The app supplies the classifier (Core ML or Core AI); DigitKit's tests a stand-in.
///
/// The work is synchronous and CPU-bound apart from the model: the app calls it from a detached task.
public struct DigitReader: Sendable {
    public let classifier: any DigitClassifying
    public let policy: ConfidencePolicy
    /// How many ranked guesses the screen shows.
    public let top: Int

    public init(classifier: any DigitClassifying, contract: AppContract) {
        self.classifier = classifier
        self.policy = contract.policy
        self.top = contract.reading.top
    }

    /// Reads a drawing.
    public func read(_ sketch: Sketch) async -> ReadingResult {
        let raster = sketch.rasterized()
        if let early = policy.precheck(raster) { return ReadingResult(reading: early) }
        return await classify(MNISTNormalizer.normalize(raster))
    }

    /// Reads a photo: `pixels` row by row, `channels` bytes a pixel (1, 3, or 4 for RGBX).
    public func read(photo pixels: [UInt8], width: Int, height: Int, channels: Int) async -> ReadingResult {
        guard let prepared = try? PhotoPreparer.prepare(pixels: pixels, width: width, height: height,
                                                        channels: channels) else {
            return .unreadablePhoto
        }
        var result = prepared.image.isBlank ? ReadingResult(reading: .noInk) : await classify(prepared.image)
        result.photoSteps = prepared.steps
        result.photoNotes = prepared.notes
        return result
    }

    /// Asks the model about a prepared 28x28 image and judges its answer.
    func classify(_ input: GrayImage) async -> ReadingResult {
        do {
            let probabilities = try await classifier.probabilities(for: input)
            guard !probabilities.isEmpty else {
                return ReadingResult(reading: .failed("it returned no probabilities"), modelInput: input)
            }
            return ReadingResult(reading: policy.reading(for: Ranking.top(probabilities, count: top)), modelInput: input)
        } catch {
            return ReadingResult(reading: .failed(Self.describe(error)), modelInput: input)
        }
    }

    static func describe(_ error: any Error) -> String {
        (error as? any LocalizedError)?.errorDescription ?? String(describing: error)
    }
}

/// Everything the screen shows after a reading.
public struct ReadingResult: Equatable, Sendable {
    public var reading: Reading
    /// The 28x28 image the model was given, if it was asked.
    public var modelInput: GrayImage?
    /// The photo's preparation, step by step, and what was done in words (empty for drawings).
    public var photoSteps: [PhotoStep]
    public var photoNotes: [String]

    public init(reading: Reading, modelInput: GrayImage? = nil, photoSteps: [PhotoStep] = [], photoNotes: [String] = []) {
        self.reading = reading
        self.modelInput = modelInput
        self.photoSteps = photoSteps
        self.photoNotes = photoNotes
    }

    /// Nothing read yet.
    public static let empty = ReadingResult(reading: .empty)
    /// A photo that could not be decoded, by the app (UIKit) or by `PhotoPreparer`.
    public static let unreadablePhoto = ReadingResult(reading: .unreadable)
}

/// What the screen shows and which reading it is waiting for. Each new input takes a ticket; a
/// reading that finishes after a newer input, after Clear or after a switch between drawing and
/// photo is dropped, so a slow photo can never land its reading on the drawing screen.
public struct ReadingSession: Equatable, Sendable {
    public private(set) var source: InputSource
    public private(set) var shown: ReadingResult = .empty
    /// A reading is under way for the latest input.
    public private(set) var isReading = false
    private var latest = 0

    /// Proof of which input a reading is for.
    public struct Ticket: Equatable, Sendable {
        fileprivate let number: Int
    }

    public init(source: InputSource = .drawing) {
        self.source = source
    }

    /// A new input to read in the current mode: readings still under way become stale.
    public mutating func begin() -> Ticket {
        latest += 1
        isReading = true
        return Ticket(number: latest)
    }

    /// Shows `result` if `ticket` is the latest input's; returns whether it did.
    @discardableResult
    public mutating func finish(_ ticket: Ticket, with result: ReadingResult) -> Bool {
        guard ticket.number == latest else { return false }
        shown = result
        isReading = false
        return true
    }

    /// Clears the screen, in `source` mode: readings under way become stale.
    public mutating func reset(to source: InputSource) {
        latest += 1
        self.source = source
        shown = .empty
        isReading = false
    }
}
