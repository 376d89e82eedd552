"""kerasml: Keras image classifiers to Core ML, verified on Linux."""

__version__ = "0.1.0"
