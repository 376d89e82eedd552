import DigitKit
import SwiftUI

/// The reading: a headline and what it means, the top-3 digits with confidence bars, and the image
/// the model saw. What it says for each outcome is DigitKit's decision (`ReadingDisplay`, in the
/// contract's words); this view only renders it.
struct PredictionView: View {
    let display: ReadingDisplay
    let modelInput: GrayImage?
    /// A reading is under way (a photo takes a moment).
    let isReading: Bool

    var body: some View {
        HStack(alignment: .top, spacing: 16) {
            VStack(alignment: .leading, spacing: 8) {
                HStack(spacing: 8) {
                    Text(display.headline)
                        .font(.title2.bold())
                    if isReading {
                        ProgressView()
                    }
                }
                if let detail = display.detail {
                    Text(detail)
                        .font(.footnote)
                        .foregroundStyle(display.detailIsError ? Color.red : Color.secondary)
                }
                ForEach(display.predictions) { prediction in
                    ConfidenceBar(prediction: prediction,
                                  isAnswer: display.highlightsBest && prediction == display.predictions.first)
                }
            }
            .frame(maxWidth: .infinity, alignment: .leading)
            if let modelInput {
                VStack(spacing: 4) {
                    GrayImageView(image: modelInput)
                        .frame(width: 56, height: 56)
                        .border(.secondary)
                    Text("Model input").font(.caption2).foregroundStyle(.secondary)
                }
                .accessibilityHidden(true)
            }
        }
        .frame(minHeight: 140, alignment: .top)
        .animation(.default, value: display)
    }
}

private struct ConfidenceBar: View {
    let prediction: Prediction
    let isAnswer: Bool

    var body: some View {
        HStack(spacing: 8) {
            Text(prediction.label)
                .font(.title3.monospacedDigit().bold())
                .frame(minWidth: 24)
            ProgressView(value: prediction.confidence)
                .tint(isAnswer ? Color.accentColor : Color.gray)
            Text(LabelFormat.percent(prediction.confidence))
                .font(.callout.monospacedDigit())
                .frame(minWidth: 44, alignment: .trailing)
        }
        .accessibilityElement(children: .combine)
    }
}

/// Draws a small grayscale image pixel by pixel, without smoothing (also the photo steps).
struct GrayImageView: View {
    let image: GrayImage

    var body: some View {
        let image = self.image                  // the renderer gets the value, not the view
        Canvas { context, size in
            let cell = CGSize(width: size.width / Double(image.width), height: size.height / Double(image.height))
            context.fill(Path(CGRect(origin: .zero, size: size)), with: .color(.black))
            for y in 0..<image.height {
                for x in 0..<image.width where image[x, y] > 0 {
                    let rect = CGRect(x: Double(x) * cell.width, y: Double(y) * cell.height,
                                      width: cell.width, height: cell.height)
                    context.fill(Path(rect), with: .color(Color(white: Double(image[x, y]) / 255)))
                }
            }
        }
    }
}
