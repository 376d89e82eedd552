import DigitKit
import PhotosUI
import SwiftUI

/// Pick a photo or take one, and see how it was prepared for the model (DigitKit's
/// `PhotoPreparer`, the algorithm `kerasml predict` runs on Linux): each step as a thumbnail,
/// and what was done in words.
struct PhotoInputView: View {
    let steps: [PhotoStep]
    let notes: [String]
    let onPicture: (UIImage) -> Void

    @State private var selection: PhotosPickerItem?
    @State private var showsCamera = false
    @State private var loadFailure: String?

    var body: some View {
        VStack(alignment: .leading, spacing: 12) {
            HStack {
                PhotosPicker(selection: $selection, matching: .images) {
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
            if let loadFailure {
                Text(loadFailure).font(.footnote).foregroundStyle(.red)
            }
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
                ForEach(notes, id: \.self) { note in
                    Label(note, systemImage: "checkmark.circle").font(.caption)
                }
            }
        }
        .onChange(of: selection) { item in
            guard let item else { return }
            Task {
                do {
                    guard let data = try await item.loadTransferable(type: Data.self),
                          let image = UIImage(data: data) else {
                        loadFailure = "That photo could not be read as an image."
                        return
                    }
                    loadFailure = nil
                    onPicture(image)
                } catch {
                    loadFailure = "That photo could not be loaded: \(error.localizedDescription)"
                }
            }
        }
        .fullScreenCover(isPresented: $showsCamera) {
            CameraPicker(onPicture: onPicture).ignoresSafeArea()
        }
    }
}

/// One named intermediate image of the photo preparation.
struct PhotoStep: Identifiable {
    let name: String
    let image: GrayImage
    var id: String { name }
}
