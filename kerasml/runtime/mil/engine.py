"""Executes ML Programs: the `main` function's block, one op at a time through `registry.MIL_OPS`.

Every op runs the version registered for the function's opset (iOS 17's scatter for a CoreML7
program). Before anything runs, an op type nobody registered, or a parameter its version does not
declare, is refused by name; a missing required parameter, or a computed value where the op
requires a constant, is a malformed model.

Values that depend only on constants (`const`, the `constexpr_*` decompression ops and anything
computed from them) are evaluated once at load. The rest run per batch on arrays that carry an extra
leading axis of independent predictions; each op's result is cast to the dtype the program
declares for it, so fp16 programs round like fp16 hardware (arithmetic itself runs in float32).
A value beyond float16's range in an op declared fp16 is refused by default (its answer depends on
the compute unit); with `compute="fp16"` it is what the GPU and Neural Engine make of it (inf), and
what float16 does to each value is recorded (`kerasml.runtime.fp16`) instead. Ops a program declares
in float32 stay float32 either way: Core ML runs an ML Program in the types it declares (typed
execution), moving an fp32 op to the GPU or CPU rather than rounding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasml.errors import KerasmlError
from kerasml.runtime import fp16, kernels
from kerasml.runtime.errors import UnsupportedModelError
from kerasml.runtime.mil import values as mil_values
from kerasml.runtime.mil.args import Args
from kerasml.runtime.registry import MIL_OPS, OPSETS, OpVersion

_RUNTIME_ERRORS = (ValueError, IndexError, TypeError, ArithmeticError, KeyError)


@dataclass(frozen=True)
class Classify:
    """The program's `classify` op: which value holds the probabilities, and the labels."""

    probabilities: str
    labels: list
    outputs: tuple[str, ...]


@dataclass
class _Step:
    name: str
    kind: str
    inputs: dict  # param -> list of ("var", name) or ("const", value)
    outputs: list[str]
    dtypes: list  # numpy dtype per output, None when not a tensor
    version: OpVersion  # what the op runs in this program's opset, with its declared inputs
    ws: object = None  # kernels.Workspace for ops that keep buffers between batches


class ProgramEngine:
    def __init__(self, spec, folder: Path | None, compute: str = "fp32"):
        self.fp16 = compute == "fp16"
        self.load_events: list[tuple[str, str]] = []  # fp16 events of the constants, found at load
        self._stored: dict[str, object] = {}  # each constant's dtype as the program declares it
        program = spec.mlProgram
        if "main" not in program.functions:
            raise KerasmlError("the ML Program has no 'main' function; convert the model again")
        function = program.functions["main"]
        block = function.block_specializations.get(function.opset)
        if block is None:
            raise KerasmlError(f"the ML Program has no block for its opset {function.opset}; convert the model again")
        self.opset = OPSETS.get(function.opset)
        if self.opset is None:
            raise UnsupportedModelError(
                f"the ML Program's opset '{function.opset}' is not one the kerasml runtime knows "
                f"({', '.join(OPSETS)}); check it on macOS with coremltools"
            )
        self.folder = folder
        self._blobs = mil_values.BlobFiles(folder)
        self.inputs = {}
        for i in function.inputs:
            t = i.type.tensorType
            self.inputs[i.name] = (mil_values.numpy_dtype(t.dataType), _declared_shape(t))
        self.outputs = list(block.outputs)
        self.consts: dict[str, object] = {}
        self.steps: list[_Step] = []
        self.classify: Classify | None = None
        self.op_types: list[tuple[str, str, list]] = []  # (type, first output, input names) for inspection
        # name what is missing or unknown before reading any weights
        versions = [self._version(op, function.opset) for op in block.operations]
        for op, version in zip(block.operations, versions):
            self._compile(op, version)

    def _version(self, op, opset_name: str) -> OpVersion | None:
        """The version of `op` this program runs (None for const and classify), its parameters checked."""
        if op.type in ("const", "classify"):
            return None
        name = op.outputs[0].name if op.outputs else "?"
        if op.type not in MIL_OPS:
            raise UnsupportedModelError(
                f"op '{name}' has type '{op.type}', which the kerasml runtime does not implement; "
                "convert the model without it or check it on macOS with coremltools"
            )
        version = MIL_OPS.version(op.type, self.opset)
        if version is None:
            first = MIL_OPS[op.type].versions[0].opset
            raise UnsupportedModelError(
                f"op '{name}' has type '{op.type}', which came with iOS {first}: an iOS {self.opset} program "
                f"({opset_name}) cannot have it; convert the model again"
            )
        given = list(op.inputs) + [p for p in op.attributes if p not in ("name", "val")]
        undeclared = version.inputs.undeclared(given)
        if undeclared:
            raise UnsupportedModelError(
                f"op '{name}' ({op.type}) has parameter '{undeclared[0]}', which {op.type} does not declare in "
                f"iOS {self.opset} programs ({opset_name}); the kerasml runtime does not guess what it means: "
                "convert the model without it or check it on macOS with coremltools"
            )
        missing = version.inputs.missing(given)
        if missing:
            raise KerasmlError(f"op '{name}' ({op.type}) lacks its '{missing[0]}' input; the model is malformed")
        return version

    def _compile(self, op, version: OpVersion | None) -> None:
        name = op.outputs[0].name if op.outputs else op.type
        if op.blocks:
            raise UnsupportedModelError(
                f"op '{name}' ({op.type}) has nested blocks (control flow), which the kerasml runtime does not implement"
            )
        inputs = {}
        for param, argument in op.inputs.items():
            bound = []
            for binding in argument.arguments:
                if binding.WhichOneof("binding") == "name":
                    bound.append(("var", binding.name))
                else:
                    bound.append(("const", self._constant(f"{name}.{param}", binding.value)))
            inputs[param] = bound
        for param, value in op.attributes.items():  # iOS 16 constexpr ops keep their data here
            if param not in ("name", "val") and param not in inputs:
                inputs[param] = [("const", self._constant(f"{name}.{param}", value))]
        self.op_types.append((op.type, name, [b[1] for v in inputs.values() for b in v if b[0] == "var"]))
        if op.type == "const":
            self.consts[op.outputs[0].name] = self._constant(op.outputs[0].name, op.attributes["val"])
            return
        if op.type == "classify":
            self._compile_classify(op, inputs, name)
            return
        dtypes = []
        for out in op.outputs:
            t = out.type
            dtype = mil_values.numpy_dtype(t.tensorType.dataType) if t.WhichOneof("type") == "tensorType" else None
            self._stored[out.name] = dtype
            dtypes.append(self._held(dtype))
        for param, bound in inputs.items():
            if param in version.inputs and version.inputs[param].const:
                computed = [ref for kind, ref in bound if kind == "var" and ref not in self.consts]
                if computed:
                    raise KerasmlError(
                        f"op '{name}' ({op.type}) takes '{param}' as a constant (MIL requires it), but "
                        f"'{computed[0]}' is not one; the model is malformed"
                    )
        step = _Step(name, op.type, inputs, [o.name for o in op.outputs], dtypes, version, kernels.Workspace())
        if all(kind == "const" or ref in self.consts for bound in inputs.values() for kind, ref in bound):
            for out, value in zip(step.outputs, self._execute(step, self.consts, set(), self.load_events)):
                self.consts[out] = value
        else:
            self.steps.append(step)

    def _compile_classify(self, op, inputs, name) -> None:
        ((prob_kind, prob_ref),) = inputs["probabilities"]
        ((cls_kind, cls_ref),) = inputs["classes"]
        classes = cls_ref if cls_kind == "const" else self.consts.get(cls_ref)
        if prob_kind != "var" or classes is None:
            raise UnsupportedModelError(
                f"op '{name}' (classify) with computed classes is not implemented by the kerasml runtime"
            )
        labels = [v.item() if isinstance(v, np.ndarray) else v for v in classes]
        labels = [int(v) if isinstance(v, (int, np.integer)) else str(v) for v in labels]
        self.classify = Classify(prob_ref, labels, tuple(o.name for o in op.outputs))

    def _held(self, dtype):
        """The dtype a value declared as `dtype` is held in: the declared one (typed execution)."""
        return dtype

    def _constant(self, name: str, value) -> object:
        """A constant of the program, decoded."""
        value = mil_values.decode(value, self._blobs)
        if isinstance(value, np.ndarray):
            self._stored[name] = value.dtype
        return value

    @property
    def declares_fp16(self) -> bool:
        """Whether any op computes in float16 (coremltools' default compute precision)."""
        return any(dt is not None and np.dtype(dt) == np.float16 for step in self.steps for dt in step.dtypes)

    # -- running ----------------------------------------------------------------------------
    def _execute(self, step: _Step, env: dict, batched: set, events: list) -> list:
        values, flags = {}, {}
        for param, bound in step.inputs.items():
            vals, fl = [], []
            for kind, ref in bound:
                if kind == "const":
                    vals.append(ref)
                    fl.append(False)
                else:
                    if ref not in env:
                        raise KerasmlError(
                            f"op '{step.name}' ({step.kind}) reads '{ref}', which nothing produces; the model is malformed"
                        )
                    vals.append(env[ref])
                    fl.append(ref in batched)
            values[param], flags[param] = vals, fl
        args = Args(step.name, step.kind, values, flags, step.dtypes, step.ws if batched else None,
                    opset=self.opset, inputs=step.version.inputs)
        try:
            results = step.version.run(args)
        except KerasmlError:
            raise
        except _RUNTIME_ERRORS as exc:
            raise KerasmlError(f"op '{step.name}' ({step.kind}) cannot run: {exc}") from None
        if len(results) != len(step.outputs):
            raise UnsupportedModelError(
                f"op '{step.name}' ({step.kind}) has {len(step.outputs)} outputs; the kerasml runtime computes {len(results)}"
            )
        if self.fp16:
            read = [v for vals in values.values() for v in vals]
            return [
                fp16.rounded(out, r, events, batched=bool(batched), inputs=read) if dt == np.float16 and fp16.is_float(r)
                else _as_declared(step, r, dt) if dt is not None and isinstance(r, np.ndarray | np.generic) else r
                for out, r, dt in zip(step.outputs, results, step.dtypes)
            ]
        return [
            _as_declared(step, r, dt) if dt is not None and isinstance(r, np.ndarray | np.generic) else r
            for r, dt in zip(results, step.dtypes)
        ]

    def prepare_image(self, name: str, pixels: np.ndarray) -> np.ndarray:
        """(N, C, H, W) raw pixels → the function input: preprocessing is part of the program."""
        return self.prepare_array(name, pixels)

    def prepare_array(self, name: str, x: np.ndarray) -> np.ndarray:
        dtype, shape = self.inputs[name]
        if None in shape:  # a flexible input: each prediction's array keeps its own sizes
            if x.ndim - 1 != len(shape) or any(d is not None and d != n for d, n in zip(shape, x.shape[1:])):
                raise KerasmlError(f"input '{name}' takes {shape} per prediction (None: any size), got {x.shape[1:]}")
            return np.ascontiguousarray(x, dtype=dtype)
        if x[0].size != int(np.prod(shape)):
            raise KerasmlError(f"input '{name}' takes {shape} per prediction, got {x.shape[1:]}")
        return np.ascontiguousarray(x.reshape((len(x),) + shape), dtype=dtype)

    def computed_names(self) -> list[str]:
        """Every value computed per prediction (each op output that is not a constant), in order."""
        return [out for step in self.steps for out in step.outputs]

    def constant_names(self) -> list[str]:
        """Every value fixed at load: `const` ops and ops on constants only."""
        return list(self.consts)

    def run(self, feeds: dict[str, np.ndarray], wanted: list[str], events: list | None = None) -> dict[str, np.ndarray]:
        """The `wanted` values for a batch of prepared inputs; fp16 events are appended to `events`."""
        events = [] if events is None else events
        env = dict(self.consts)
        env.update(feeds)
        batched = set(feeds)
        for step in self.steps:
            outputs = self._execute(step, env, batched, events)
            env.update(zip(step.outputs, outputs))
            batched.update(step.outputs)
        missing = [w for w in wanted if w not in env]
        if missing:
            raise KerasmlError(f"the ML Program never produces {missing[0]!r}; the model is malformed")
        n = len(next(iter(feeds.values())))
        return {
            w: np.array(env[w] if w in batched else np.broadcast_to(env[w], (n,) + np.shape(env[w]))) for w in wanted
        }

    # -- description --------------------------------------------------------------------------
    def image_preprocessing(self) -> dict[str, tuple[float, list]]:
        """{input: (scale, bias)} read from a leading `mul` (and `add`) by constants, if present."""
        found = {}
        for name in self.inputs:
            scale, bias, current = 1.0, [0.0], name
            for step in self.steps:
                refs = {p: b[0] for p, b in step.inputs.items() if len(b) == 1}
                if step.kind == "cast" and refs.get("x") == ("var", current):
                    current = step.outputs[0]
                    continue
                other = [self._const_of(b) for p, b in refs.items() if b != ("var", current) and p in ("x", "y")]
                if ("var", current) not in refs.values() or len(other) != 1 or other[0] is None:
                    continue
                if step.kind == "mul" and bias == [0.0] and scale == 1.0:
                    scale, current = float(np.ravel(other[0])[0]), step.outputs[0]
                elif step.kind == "add":
                    bias, current = [float(v) for v in np.ravel(other[0])], step.outputs[0]
                    break
            found[name] = (scale, bias)
        return found

    def _const_of(self, binding):
        kind, ref = binding
        value = ref if kind == "const" else self.consts.get(ref)
        return value if isinstance(value, np.ndarray) and value.size in (1, 3) else None

    def weight_precisions(self) -> set[str]:
        kinds = {t for t, _, _ in self.op_types}
        found = set()
        if kinds & {"constexpr_lut_to_dense"}:
            found.add("lut")
        if kinds & {"constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"}:
            found.add("int8")
        for op_type, _, refs in self.op_types:
            if op_type in ("conv", "linear", "matmul", "conv_transpose"):
                for ref in refs:
                    value = self.consts.get(ref)
                    if isinstance(value, np.ndarray) and value.ndim >= 2:  # as stored, before compute="fp16"
                        found.add("float16" if self._stored.get(ref, value.dtype) == np.float16 else "float32")
        return found


def _as_declared(step: _Step, result, dtype) -> np.ndarray:
    """An op's float32 result in the dtype the program declares for it. A finite value beyond fp16's
    range (|x| > 65504) in an fp16 program has no single Core ML answer (inf where the op runs in
    fp16, the value itself where Core ML runs it in fp32 on the CPU), so it is refused, not guessed."""
    with np.errstate(over="ignore"):
        out = np.asarray(result).astype(dtype, copy=False)
    if out.dtype == np.float16 and out.size and not np.isfinite(out).all():
        overflow = np.isinf(out) & np.isfinite(result)
        if overflow.any():
            value = float(np.asarray(result)[overflow].flat[0])
            raise UnsupportedModelError(
                f"op '{step.name}' ({step.kind}) computes {value:.6g}, beyond the fp16 range (±65504) its "
                "result is declared in, so Core ML's answer depends on the compute unit: `kerasml diff` "
                "names the layers to keep in float32 (convert --fp32-layers), or convert with --precision fp32"
            )
    return out


def _declared_shape(tensor_type) -> tuple:
    """An input's shape, None for each dimension whose size is left open (flexible inputs)."""
    return tuple(
        int(d.constant.size) if d.WhichOneof("dimension") == "constant" else None for d in tensor_type.dimensions
    )
