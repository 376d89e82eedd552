import Combine
import DigitKit
import Foundation
import PhotosUI
import SwiftUI
import UIKit

/// The screen's state: the drawing, the reading the screen shows, and the model.
///
/// Views call `select`, `draw`, `strokeEnded`, `read(photoItem:)`, `read(photo:)` and `clear`, and
/// only render what is published here. What is read and how (the pipeline) is DigitKit's
/// `DigitReader`, run in a detached task; which reading the screen shows is DigitKit's
/// `ReadingSession` (the latest input's, in the current mode) and in which words the contract's
/// (`AppContract.display`). Photos are loaded and decoded off the main thread too.
@MainActor
final class DigitRecognizer: ObservableObject {
    enum ModelState {
        case loading
        case ready(ModelCard)
        case unavailable(String)
    }

    /// Strokes in unit coordinates: the canvas side is 1, whatever its size on screen. Drawn and
    /// rasterised with the bundled contract's `drawing` numbers, so nil only in a broken build (the
    /// banner reports it).
    @Published private(set) var sketch: Sketch? = nil
    @Published private(set) var session = ReadingSession()
    @Published private(set) var modelState: ModelState = .loading

    /// The bundled contract: thresholds and words (nil only in a broken build, which the banner reports).
    private(set) var contract: AppContract?
    private var tracker = StrokeTracker()
    private var reader: DigitReader?
    private var pending: Task<Void, Never>?

    init() {
        contract = try? DigitPredictor.contract()
        sketch = contract.map { Sketch(canvasSide: 1, drawing: $0.drawing) }
    }

    /// What the screen shows for the current reading, in the contract's words.
    var display: ReadingDisplay? {
        contract?.display(session.shown.reading, source: session.source)
    }

    /// Loads the model once, off the main thread; a missing or unsuitable model becomes one message, not a crash.
    func loadModel() async {
        guard reader == nil else { return }
        do {
            let loaded = try await Task.detached(priority: .userInitiated) { try await DigitPredictor.load() }.value
            contract = loaded.contract
            reader = DigitReader(classifier: loaded.classifier, contract: loaded.contract)
            modelState = .ready(loaded.card)
            if session.source == .drawing, sketch?.isEmpty == false { strokeEnded() }
        } catch {
            modelState = .unavailable(error.localizedDescription)
        }
    }

    /// Switches between drawing and photo: the screen starts afresh.
    func select(_ source: InputSource) {
        guard source != session.source else { return }
        clear(to: source)
    }

    /// A drag moved to `point`; `dragStart` tells a new drag (a new stroke) from the same one.
    func draw(to point: CanvasPoint, dragStart: CanvasPoint) {
        guard var drawn = sketch else { return }
        tracker.dragChanged(to: point, dragStart: dragStart, in: &drawn)
        sketch = drawn
    }

    /// Reads the drawing when a stroke ends (or is cancelled).
    func strokeEnded() {
        tracker.dragFinished()
        guard let reader, let sketch else { return }          // no model: the banner says so, once
        start { await reader.read(sketch) }
    }

    /// A photo chosen in the library: loaded, decoded and read off the main thread.
    func read(photoItem item: PhotosPickerItem) {
        guard let reader else { return }
        let ticket = begin()
        pending = Task {
            let data = try? await Self.data(of: item)
            guard !Task.isCancelled else { return }
            let result = await Task.detached(priority: .userInitiated) {
                guard let data, let pixels = PhotoPixels(data: data) else { return ReadingResult.unreadablePhoto }
                return await reader.read(photo: pixels.pixels, width: pixels.width, height: pixels.height,
                                         channels: PhotoPixels.channels)
            }.value
            session.finish(ticket, with: result)
        }
    }

    /// A photo taken with the camera: decoded and read off the main thread.
    func read(photo image: UIImage) {
        guard let reader else { return }
        let picture = PhotoPixels.Picture(image)   // the decoded bitmap, which may leave the main thread
        start {
            guard let picture, let pixels = PhotoPixels(picture) else { return .unreadablePhoto }
            return await reader.read(photo: pixels.pixels, width: pixels.width, height: pixels.height,
                                     channels: PhotoPixels.channels)
        }
    }

    /// Clears the drawing or the photo; a reading still under way is dropped.
    func clear() {
        clear(to: session.source)
    }

    private func clear(to source: InputSource) {
        pending?.cancel()
        pending = nil
        sketch?.clear()
        tracker.dragFinished()
        session.reset(to: source)
    }

    /// A new input: the reading of an older one is cancelled and, should it still finish, not shown.
    private func begin() -> ReadingSession.Ticket {
        pending?.cancel()
        return session.begin()
    }

    private func start(_ work: @escaping @Sendable () async -> ReadingResult) {
        let ticket = begin()
        pending = Task {
            let result = await Task.detached(priority: .userInitiated, operation: work).value
            session.finish(ticket, with: result)
        }
    }

    /// The picked photo's file data (PhotosPickerItem's completion-handler API: the item stays on
    /// the main actor, only the Sendable result crosses).
    private static func data(of item: PhotosPickerItem) async throws -> Data? {
        try await withCheckedThrowingContinuation { continuation in
            item.loadTransferable(type: Data.self) { result in continuation.resume(with: result) }
        }
    }
}
