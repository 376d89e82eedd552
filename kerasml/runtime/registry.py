"""The one way layers and ops join the runtime: a `Registry` per model format, filled by decorators.

`NN_LAYERS` maps a NeuralNetwork layer type (the `layer` oneof name, e.g. "convolution") to a compile
function `compile(layer, name) -> run(inputs) -> outputs`. A module states what it implements with
`@NN_LAYERS.register("type", ...)` above the function, or `.add(name, fn)` for a family built in a
loop. A name registered twice is a bug (which of the two would run would depend on import order),
so it raises at import.

`MIL_OPS` maps an ML Program op type (e.g. "conv") to an `Op`: its versions, each a function
`run(args) -> outputs` with the inputs it declares, as coremltools' ops declare their `input_spec`:

    @MIL_OPS.register("linear", inputs=InputSpec(x=TENSOR, weight=CONST, bias=OPTIONAL_CONST))
    def linear(args): ...

    @MIL_OPS.register("scatter", opset=IOS17, inputs=SCATTER.but(validate_indices=OPTIONAL_CONST))
    def scatter_ios17(args): ...    # iOS 17 changed what an index means: a version of its own

A version serves its iOS release and every later one until the next version; the engine picks the
one for the function's opset (`OPSETS`) and refuses a parameter the version does not declare, as it
refuses an op type nobody registered. This module imports nothing of the runtime but its error
type, so the engines and every layer or op module depend on it and never on each other; the
packages `nn` and `mil` import their modules once, which fills the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Mapping

from kerasml.runtime.errors import UnsupportedModelError


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


# -- ML Program ops: declared inputs, one version per iOS release that changed them -----------------
IOS15, IOS16, IOS17, IOS18 = 15, 16, 17, 18
# A function's `opset` names the iOS release whose op versions it uses (ML Programs start at iOS 15;
# iOS 26's programs use iOS 18's ops, the last release that changed one).
OPSETS = {"CoreML5": IOS15, "CoreML6": IOS16, "CoreML7": IOS17, "CoreML8": IOS18, "CoreML9": 26}


@dataclass(frozen=True)
class Input:
    """One declared parameter: may the program leave it out; must its value be known at load
    (a `const` or computed from constants only), as MIL requires of weights and settings."""

    optional: bool = False
    const: bool = False


TENSOR = Input()
CONST = Input(const=True)
OPTIONAL = Input(optional=True)
OPTIONAL_CONST = Input(optional=True, const=True)


class InputSpec(Mapping[str, Input]):
    """The parameters of one op version by name: `InputSpec(x=TENSOR, alpha=CONST)`."""

    def __init__(self, **params: Input):
        for name, kind in params.items():
            if not isinstance(kind, Input):
                raise TypeError(f"parameter '{name}' is declared as {kind!r}, not an Input")
        self._params = dict(params)

    def but(self, **changes: Input | None) -> "InputSpec":
        """This spec with parameters added or changed, or removed where the change is None."""
        params = {**self._params, **changes}
        return InputSpec(**{name: kind for name, kind in params.items() if kind is not None})

    def __getitem__(self, name: str) -> Input:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __repr__(self) -> str:
        names = {TENSOR: "TENSOR", CONST: "CONST", OPTIONAL: "OPTIONAL", OPTIONAL_CONST: "OPTIONAL_CONST"}
        return "InputSpec(" + ", ".join(f"{p}={names[k]}" for p, k in self._params.items()) + ")"

    def undeclared(self, given: Iterable[str]) -> list[str]:
        return sorted(set(given) - set(self._params))

    def missing(self, given: Iterable[str]) -> list[str]:
        given = set(given)
        return [p for p, kind in self._params.items() if not kind.optional and p not in given]


@dataclass(frozen=True)
class OpVersion:
    """One version of an ML Program op: the release it came with, what it takes, what it runs."""

    name: str
    opset: int
    inputs: InputSpec
    run: Callable[..., list]


class Op:
    """An ML Program op type and its versions, oldest first.

    The engine asks `at(opset)` for the version a program runs. Called directly, `op(args)` runs
    the version for `args.opset`, or, for callers that do not know the program's opset (an op
    evaluated alone on constants), the oldest version whose declaration the parameters given fit
    (every one declared, none required missing)."""

    def __init__(self, name: str):
        self.name = name
        self.versions: list[OpVersion] = []

    def add(self, version: OpVersion) -> None:
        if any(v.opset == version.opset for v in self.versions):
            raise RuntimeError(f"ML Program op '{self.name}' has two versions for iOS {version.opset} "
                               f"({version.run.__module__})")
        self.versions = sorted(self.versions + [version], key=lambda v: v.opset)

    def at(self, opset: int) -> OpVersion | None:
        """The newest version not newer than `opset`; None when the op came later."""
        found = [v for v in self.versions if v.opset <= opset]
        return found[-1] if found else None

    def fitting(self, params: Iterable[str]) -> OpVersion | None:
        params = list(params)
        return next((v for v in self.versions if not v.inputs.undeclared(params) and not v.inputs.missing(params)),
                    None)

    def __call__(self, args) -> list:
        if args.opset is not None:
            version = self.at(args.opset)
            if version is None:
                raise UnsupportedModelError(f"op '{args.name}' ({self.name}) does not exist in iOS {args.opset} programs")
            undeclared = version.inputs.undeclared(args.params())
            if undeclared:
                raise UnsupportedModelError(
                    f"op '{args.name}' ({self.name}) has parameter '{undeclared[0]}', which {self.name} does not "
                    f"declare in iOS {args.opset} programs; the kerasml runtime does not implement it"
                )
        else:
            version = self.fitting(args.params())
            if version is None:
                raise UnsupportedModelError(
                    f"op '{args.name}' ({self.name}) has parameters {sorted(args.params())}, which no version of "
                    f"{self.name} declares; the kerasml runtime does not implement them"
                )
        return version.run(args.declared(version.inputs))


class OpRegistry(Registry):
    """ML Program op types → `Op`; `register` adds a version with its declared inputs."""

    def add(self, name: str, fn: Callable, *, inputs: InputSpec, opset: int = IOS15) -> Callable:
        if not isinstance(inputs, InputSpec):
            raise TypeError(f"ML Program op '{name}' must declare its inputs with an InputSpec")
        if name not in self._entries:
            self._entries[name] = Op(name)
        self._entries[name].add(OpVersion(name, opset, inputs, fn))
        return fn

    def register(self, *names: str, inputs: InputSpec, opset: int = IOS15) -> Callable[[Callable], Callable]:
        def decorate(fn: Callable) -> Callable:
            for name in names:
                self.add(name, fn, inputs=inputs, opset=opset)
            return fn

        return decorate

    def version(self, name: str, opset: int) -> OpVersion | None:
        op = self._entries.get(name)
        return None if op is None else op.at(opset)


NN_LAYERS = Registry("NeuralNetwork layer")
MIL_OPS = OpRegistry("ML Program op")
