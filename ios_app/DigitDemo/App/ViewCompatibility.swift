import SwiftUI

extension View {
    /// Runs `action` with the new value whenever `value` changes: SwiftUI's two-parameter
    /// `onChange(of:initial:_:)` on iOS 17 and later. The app still runs on iOS 16
    /// (app-contract.json `model.minimum_ios`), which has only the one-parameter form iOS 17
    /// deprecated; this is the one place that uses it.
    @ViewBuilder
    func onValueChange<Value: Equatable>(of value: Value, perform action: @escaping (Value) -> Void) -> some View {
        if #available(iOS 17.0, *) {
            onChange(of: value) { _, newValue in action(newValue) }
        } else {
            onChange(of: value, perform: action)
        }
    }
}
