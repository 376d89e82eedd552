"""Apple Core AI (iOS 27+): Core ML programs lowered to `.aimodel` programs, run with Apple's own
runtime on Linux.

    lowering/         Core ML program → Core AI program: one small function per ML Program op
                      (`lowering/mil/`) and per NeuralNetwork layer (`lowering/nn/`), `graph.py` the
                      shared emitter, `program.py` the walk
    runtime.py        an `.aimodel` run by Apple's runtime, behind the interface verify/evaluate/predict use
    intermediates.py  every value a saved `.aimodel` computes, for `kerasml diff`

Apple's `coreai-core` is imported through `kerasml.libs`; the `.aimodel` folder (writing it, checking
one before it runs) is `kerasml.model.aimodel`, and `kerasml convert --format aimodel` is
`kerasml.conversion.to_coreai`.
"""
