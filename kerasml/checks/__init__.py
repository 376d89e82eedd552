"""Checks of a Core ML model on Linux: `verify` (against its Keras model), `evaluate` (accuracy on
labelled images) and `predict` (image files), all through kerasml's NumPy runtime."""
