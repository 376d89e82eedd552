"""Conversion: a Keras model to Core ML (`.mlmodel`, `.mlpackage`) or Core AI (`.aimodel`), with
everything Xcode shows, or a Core ML model migrated to Core AI.

    to_coreml.py        Keras → Core ML: trace, coremltools, names, metadata (metadata.py), the
                        layer record (layers.py), fixes for graphs coremltools cannot map
                        (conversion_fixes.py, folding.py), the image input (interface.py)
    compress.py         --precision / --sparsity through coremltools.optimize (the schemes are
                        model/precision.py's); auto_precision.py, sensitivity.py, layer_costs.py:
                        --precision auto and `diff --sensitivity`
    to_coreai.py        --format aimodel: through the ML Program, lowered by kerasml.coreai

`convert(options)` is the stage's one public function. Importing the package imports neither
TensorFlow, coremltools nor the runtime.
"""

from __future__ import annotations

from typing import Callable


def convert(options, say: Callable[[str], None] = print, warn: Callable[[str], None] = print):
    """`kerasml convert`: `options` (a `to_coreml.ConvertOptions`) to the format it names (None: --out's
    suffix, else mlmodel); returns a `ConvertResult`."""
    if options.format == "aimodel":
        from kerasml.conversion.to_coreai import convert as to_core_ai

        return to_core_ai(options, say=say, warn=warn)
    from kerasml.conversion.to_coreml import convert as to_core_ml

    return to_core_ml(options, say=say, warn=warn)
