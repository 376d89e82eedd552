"""The names of a kerasml model's features, in every format, written here once.

Core ML: like Apple's MNISTClassifier, `image` in and `classLabel` (the most likely label) and
`labelProbabilities` (label → probability) out, instead of a traced graph's `x` and `Identity`.
Core AI: one function, `classify`, from `image` (a float32 [N, H, W, C] batch of 0-255 pixels) to
`labelProbabilities` (float32 [N, classes], in label order). The app contract names the same.
"""

INPUT_NAME = "image"
LABEL_OUTPUT = "classLabel"
PROBABILITY_OUTPUT = "labelProbabilities"

CORE_AI_FUNCTION = "classify"
CORE_AI_INPUT = INPUT_NAME
CORE_AI_OUTPUT = PROBABILITY_OUTPUT
