"""Apple Core AI (iOS 27+): Keras and Core ML models lowered to `.aimodel` programs, run with Apple's
own runtime on Linux.

    library.py    the one import of Apple's `coreai-core` (a clear line when it is missing)
    lowering/     Core ML program → Core AI program: one small function per ML Program op
                  (`lowering/mil/`) and per NeuralNetwork layer (`lowering/nn/`), `graph.py` the shared
                  emitter, `program.py` the walk
    asset.py      writing an `.aimodel` (atomically, with kerasml's metadata) and checking one before it runs
    runtime.py    an `.aimodel` run by Apple's runtime, behind the interface verify/evaluate/predict use
    convert.py    `kerasml convert ... --format aimodel`: from Keras (through the ML Program kerasml
                  builds) or from an existing .mlmodel/.mlpackage
"""
