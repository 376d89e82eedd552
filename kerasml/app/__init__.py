"""The demo app's half of kerasml: what a model must be for the SwiftUI app (`contract`, read from
the app's own `app-contract.json`), whether a model is that (`fit`), and putting it there (`package`).
DigitKit decodes the same contract, and both sides run the same fixture of check outcomes
(tests/fixtures/contract-outcomes.json), so the two checks cannot drift apart."""
