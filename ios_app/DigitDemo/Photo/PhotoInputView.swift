import DigitKit
import PhotosUI
import SwiftUI

/// Pick a photo or take one, and see how it was prepared for the model (DigitKit's
/// `PhotoPreparer`, the algorithm `kerasml predict` runs on Linux): each step as a thumbnail,
/// and what was done in words. Loading and reading the photo is the recognizer's; the reading
/// itself (also when the photo cannot be read) is `PredictionView`'s.
struct PhotoInputView: View {
    let steps: [PhotoStep]
    let notes: [String]
    let onItem: (PhotosPickerItem) -> Void
    let onPicture: (UIImage) -> Void

    @State private var showsCamera = false

    var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            HStack {
                // Each pick is handed on at once, so picking the same photo again reads it again.
                PhotosPicker(selection: Binding(get: { nil }, set: { item in if let item { onItem(item) } }),
                             matching: .images) {
                    Label("Choose Photo", systemImage: "photo.on.rectangle")
                }
                .buttonStyle(.bordered)
                Button { showsCamera = true } label: {
                    Label("Take Photo", systemImage: "camera")
                }
                .buttonStyle(.bordered)
                .disabled(!CameraPicker.isAvailable)
            }
            Text("Write one digit on paper with a dark pen, fill most of the picture with it.")
                .font(.footnote)
                .foregroundStyle(.secondary)
            if !steps.isEmpty {
                ScrollView(.horizontal, showsIndicators: false) {
                    HStack(alignment: .top, spacing: 8) {
                        ForEach(steps) { step in
                            VStack(spacing: 4) {
                                GrayImageView(image: step.image)
                                    .aspectRatio(Double(step.image.width) / Double(max(step.image.height, 1)),
                                                 contentMode: .fit)
                                    .frame(height: 72)
                                    .border(.secondary)
                                Text(step.name).font(.caption2).foregroundStyle(.secondary)
                            }
                        }
                    }
                }
            }
            ForEach(notes, id: \.self) { note in
                Label(note, systemImage: "checkmark.circle").font(.caption)
            }
        }
        .fullScreenCover(isPresented: $showsCamera) {
            CameraPicker(isPresented: $showsCamera, onPicture: onPicture).ignoresSafeArea()
        }
    }
}
