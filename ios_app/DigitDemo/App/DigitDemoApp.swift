import SwiftUI

@main
struct DigitDemoApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
