"""Values inside a saved `.aimodel`, computed by Apple's runtime: what `kerasml diff` compares with
Keras layer by layer.

Every Core AI op kerasml writes carries, in its debug location, the name of the Core ML value it
computes part of (`lowering.graph.PROVENANCE`). A copy of the program with the last op of each
wanted value added to the function's outputs is saved to a temporary folder and run: the values
come from the program on disk, weights as stored, not from a new conversion.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

import numpy as np

from kerasml.model.aimodel import check_asset
from kerasml.libs import coreai_authoring, coreai_runtime, coreai_notes_muted
from kerasml.coreai.lowering import FUNCTION, INPUT, OUTPUT
from kerasml.coreai.lowering.graph import PROVENANCE
from kerasml.errors import KerasmlError

_TAG = re.compile(r'"' + re.escape(PROVENANCE) + r'([^"]+)"')


def intermediates(path: Path, pixels: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """{value name: (N, values) float32} for raw pixels (N, H, W, C), for those of `names` the
    program computes from the image (a value folded to a constant at conversion has no op)."""
    path = Path(path)
    check_asset(path)
    A = coreai_authoring()
    program = A.AIModelAsset.load(path).program
    graph = program._get_graph(FUNCTION)   # noqa: SLF001  b3 has no public way to reach a function
    if graph is None:
        raise KerasmlError(f"{path} has no function {FUNCTION}; it was not made by kerasml")
    last = _last_ops(graph)
    exposed = [(name, last[name]) for name in names if name in last]
    with program._module._mlir_module.context, graph.location:   # noqa: SLF001
        outputs = list(graph.outputs_spec)
        for i, (_, op) in enumerate(exposed):
            outputs.append((f"kerasml_value_{i}", op.results[0]))
        graph.outputs_spec = outputs
    with tempfile.TemporaryDirectory(prefix="kerasml-diff-") as folder:
        copy = Path(folder) / path.name
        program.save_asset(copy)
        values = _run(copy, pixels)
    return {name: values[f"kerasml_value_{i}"].reshape(len(pixels), -1) for i, (name, _) in enumerate(exposed)}


def _last_ops(graph) -> dict[str, object]:
    """Value name → the last op (in program order) that computes it and whose result holds predictions.

    When Core AI folds ops together (a reshape into the matmul or the elementwise op after it) the op
    left carries every name it absorbed, and so do the ops that later absorb it: an op computes the
    value whose name comes last in its location; it only stands for an absorbed name that no op
    computes as its own."""
    own, carried = {}, {}
    for op in graph.entry_block.operations:
        if op.name in ("coreai.constant", "coreai.output") or not len(op.results):
            continue
        if not str(op.results[0].type).startswith("tensor<?x"):
            continue
        names = _TAG.findall(str(op.location))
        if names:
            own[names[-1]] = op
        for name in names[:-1]:
            carried.setdefault(name, op)   # the first op that absorbed it is the nearest to it
    return {**carried, **own}


def _run(path: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    A, R = coreai_authoring(), coreai_runtime()

    async def go():
        async with A.AIModelAsset.load(path).executable() as model:
            function = model.load_function(FUNCTION)
            out = await function({INPUT: R.NDArray(np.ascontiguousarray(pixels, dtype=np.float32))})
            return {name: np.asarray(value.numpy(), dtype=np.float32) for name, value in out.items() if name != OUTPUT}

    with coreai_notes_muted():
        return asyncio.run(go())
