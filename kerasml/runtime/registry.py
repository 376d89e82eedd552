"""The one way layers and ops join the runtime: a `Registry` per model format, filled by decorators.

`NN_LAYERS` maps a NeuralNetwork layer type (the `layer` oneof name, e.g. "convolution") to a compile
function `compile(layer, name) -> run(inputs) -> outputs`; `MIL_OPS` maps an ML Program op type
(e.g. "conv") to a function `run(args) -> outputs`. A module states what it implements with
`@NN_LAYERS.register("type", ...)` / `@MIL_OPS.register("type", ...)` above the function, or
`.add(name, fn)` for a family built in a loop. This module imports nothing of the runtime, so the
engines and every layer or op module depend on it and never on each other; the packages `nn` and
`mil` import their modules once, which fills the tables. A name registered twice is a bug (which
of the two would run would depend on import order), so it raises at import.
"""

from __future__ import annotations

from typing import Callable, Iterator


class Registry:
    """Names of one model format's layers or ops → the functions that implement them."""

    def __init__(self, what: str):
        self.what = what  # "NeuralNetwork layer", "ML Program op": for messages
        self._entries: dict[str, Callable] = {}

    def add(self, name: str, fn: Callable) -> Callable:
        if name in self._entries:
            raise RuntimeError(f"{self.what} '{name}' is registered twice ({self._entries[name].__module__})")
        self._entries[name] = fn
        return fn

    def register(self, *names: str) -> Callable[[Callable], Callable]:
        def decorate(fn: Callable) -> Callable:
            for name in names:
                self.add(name, fn)
            return fn

        return decorate

    def get(self, name: str) -> Callable | None:
        return self._entries.get(name)

    def __getitem__(self, name: str) -> Callable:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


NN_LAYERS = Registry("NeuralNetwork layer")
MIL_OPS = Registry("ML Program op")
