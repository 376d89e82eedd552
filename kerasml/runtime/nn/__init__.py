"""The NeuralNetwork side of the runtime: the engine and its layers."""

from kerasml.runtime.nn.engine import NeuralNetworkEngine

__all__ = ["NeuralNetworkEngine"]
