"""Core ML: `convert` (Keras → Core ML with its metadata, with `conversion_fixes`, `compress` and
`keras_models`), `spec` (the one reader of what a Core ML model declares), `inspect` and `package`
(the app's contract). Importing the package imports neither TensorFlow, coremltools nor the runtime."""
