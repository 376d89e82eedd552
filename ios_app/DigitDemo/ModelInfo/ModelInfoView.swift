import DigitKit
import SwiftUI

/// The model's metadata (description, author, version, licence, labels and the accuracy from
/// training) and the framework that runs it, Core AI or Core ML.
struct ModelInfoView: View {
    let state: DigitRecognizer.ModelState

    var body: some View {
        NavigationStack {
            List {
                switch state {
                case .loading:
                    ProgressView("Loading the model…")
                case let .unavailable(message):
                    Label(message, systemImage: "exclamationmark.triangle")
                case let .ready(card):
                    Section("Framework") {
                        Text(card.frameworkLine)
                    }
                    Section("Model") {
                        if card.rows.isEmpty {
                            Text("This model has no metadata.").foregroundStyle(.secondary)
                        }
                        ForEach(card.rows) { row in
                            LabeledContent(row.title, value: row.value)
                        }
                    }
                    if !card.warnings.isEmpty {
                        Section("Check") {
                            ForEach(card.warnings, id: \.self) { Text($0) }
                        }
                    }
                }
            }
            .navigationTitle("About the model")
            .navigationBarTitleDisplayMode(.inline)
        }
    }
}
