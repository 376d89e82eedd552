"""`make diff-examples`: the worked examples docs/diff.md quotes, each a real `kerasml` run on the
default digit model (models/digits.keras, else trained on the bundled sample):

1. fault: a converted model with one convolution's weights changed by 2% after conversion;
   `kerasml diff` finds that layer (and draws docs/diff-fault.png);
2. fp16: the same model made to overflow float16 without changing what it computes (ReLU is
   positively homogeneous: the first convolution's weights times k, the next one's divided by k);
   converted with --precision fp16, `kerasml diff` names the layers (and draws docs/diff-fp16.png),
   and the --fp32-layers it prints makes a model that no longer departs;
3. sensitivity: which layers pay for palette4 compression, on the real MNIST test digits
   (../shared/data/mnist-test) when present, else the training record's test split.

Writes bench/diff/{fault,fp16,sensitivity}.md; `make docs` copies them into docs/diff.md.

    PYTHONPATH=. .venv/bin/python bench/diff_examples.py [--model models/digits.keras]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
OUT = ROOT / "bench" / "diff"
MNIST_TEST = ROOT.parent / "shared" / "data" / "mnist-test"
SAMPLES = "200"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "digits.keras")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if args.model.exists():
            shutil.copy(args.model, folder / "digits.keras")
            for beside in args.model.parent.glob(args.model.stem + ".training.json"):
                shutil.copy(beside, folder / beside.name)
        else:
            from compression import train_default_digits

            train_default_digits(folder)
        for name, example in (("fault", fault), ("fp16", fp16), ("sensitivity", sensitivity)):
            print(f"[diff-examples] {name} ...", flush=True)
            (OUT / f"{name}.md").write_text(example(folder))
    print(f"wrote {OUT}/fault.md, fp16.md, sensitivity.md")


def kerasml(folder: Path, *arguments: str, check: bool = True) -> tuple[str, str]:
    """(the command as a user types it, its standard output), run in `folder`."""
    result = subprocess.run([sys.executable, "-m", "kerasml", *arguments], cwd=folder, capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if check and result.returncode not in (0, 1):
        raise SystemExit(f"kerasml {' '.join(arguments)} failed:\n{result.stderr[-2000:]}")
    return "$ kerasml " + " ".join(arguments), result.stdout.rstrip("\n")


def block(*runs: tuple[str, str]) -> str:
    return "```\n" + "\n\n".join(f"{command}\n{output}" if output else command for command, output in runs) + "\n```\n"


# -- 1. a fault ----------------------------------------------------------------------------------------
def fault(folder: Path) -> str:
    from kerasml.model.layer_record import read
    from kerasml.runtime import load_model

    kerasml(folder, "convert", "digits.keras", "--labels", "digits", "--out", "digits.mlpackage", "--force")
    shutil.copytree(folder / "digits.mlpackage", folder / "digits-faulty.mlpackage", dirs_exist_ok=True)
    record = read(load_model(folder / "digits-faulty.mlpackage").creator_defined)
    import keras

    keras_layers = keras.saving.load_model(folder / "digits.keras").layers
    layers = [layer.name for layer in keras_layers]
    second = [layer.name for layer in keras_layers if type(layer).__name__ == "Conv2D"][1]
    owner = next(name for name in layers[layers.index(second):] if name in record)   # its op, maybe fused
    scale_one_weight(folder / "digits-faulty.mlpackage", record[owner], 1.02)
    plot = ROOT / "docs" / "diff-fault.png"
    run = kerasml(folder, "diff", "digits.keras", "digits-faulty.mlpackage", "--samples", SAMPLES,
                  "--plot", "layers.png")
    shutil.copy(folder / "layers.png", plot)
    return (f"The weights of the second convolution (`{second}`) were multiplied by 1.02 in the saved "
            "package:\n\n" + block(run) + f"\n![Each layer's relative difference]({plot.name})\n")


def scale_one_weight(package: Path, op_output: str, factor: float) -> None:
    """Multiply, in the .mlpackage's weight file, the weight of the op whose output is `op_output`
    (or of the convolution its activation reads)."""
    from kerasml.model.coreml_spec import read_spec

    spec, folder = read_spec(package)
    function = spec.mlProgram.functions["main"]
    ops = list(function.block_specializations[function.opset].operations)
    producers = {out.name: op for op in ops for out in op.outputs}
    target = producers[op_output]
    while "weight" not in target.inputs:        # the layer's activation: back to its convolution
        target = producers[target.inputs["x"].arguments[0].name]
    weight_name = target.inputs["weight"].arguments[0].name
    const = next(op for op in ops if op.outputs and op.outputs[0].name == weight_name)
    blob = const.attributes["val"].blobFileValue
    path = folder / blob.fileName[len("@model_path/"):]
    data = bytearray(path.read_bytes())
    _, _, size, start = struct.unpack_from("<IIQQ", data, blob.offset)
    values = np.frombuffer(bytes(data[start:start + size]), np.float32) * np.float32(factor)
    data[start:start + size] = values.tobytes()
    path.write_bytes(bytes(data))


# -- 2. float16 ------------------------------------------------------------------------------------------
def fp16(folder: Path) -> str:
    big, k = overflowing(folder / "digits.keras", folder / "big.keras")
    kerasml(folder, "convert", big.name, "--labels", "digits", "--precision", "fp16", "--out", "big.mlpackage",
            "--force")
    found = kerasml(folder, "diff", big.name, "big.mlpackage", "--samples", SAMPLES, "--plot", "layers.png")
    plot = ROOT / "docs" / "diff-fp16.png"
    shutil.copy(folder / "layers.png", plot)
    layers = json.loads(kerasml(folder, "diff", big.name, "big.mlpackage", "--samples", SAMPLES, "--json")[1])
    fix = ",".join(layers["fp32_layers"])
    convert = kerasml(folder, "convert", big.name, "--labels", "digits", "--precision", "fp16", "--fp32-layers", fix,
                      "--out", "big-fixed.mlpackage", "--force")
    fixed = kerasml(folder, "diff", big.name, "big-fixed.mlpackage", "--samples", SAMPLES)
    last = "\n".join(fixed[1].splitlines()[-3:])
    return (f"`big.keras` is the digit model with its first convolution's weights multiplied by "
            f"{k:.4g} and the next convolution's divided by it: Keras computes the same "
            "probabilities, but the first layers' values exceed float16's ±65504.\n\n"
            + block(found) + f"\n![Each layer's relative difference in float16]({plot.name})\n"
            "\nThe fix it prints, and the new model diffed (its last lines):\n\n"
            + block((convert[0], ""), (fixed[0], "...\n" + last)))


def overflowing(source: Path, out: Path) -> tuple[Path, float]:
    """`source` with its first ReLU convolution scaled by k and the next convolution's kernel by 1/k
    (k: 8 x 65504 over the convolution's largest value on the bundled digits); the same function."""
    import keras

    from kerasml.data import load_mnist_sample

    model = keras.saving.load_model(source)
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    first, after = convolutions[0], convolutions[1]
    images = load_mnist_sample()["x_train"][:300].astype("float32")[..., None] / 255.0
    peak = float(keras.Model(model.inputs, first.output).predict(images, verbose=0).max())
    k = 8 * 65504 / peak
    weights = first.get_weights()
    first.set_weights([weights[0] * k, *(w * k for w in weights[1:])])
    weights = after.get_weights()
    after.set_weights([weights[0] / k, *weights[1:]])
    model.save(out)
    for record in source.parent.glob(source.stem + ".training.json"):
        shutil.copy(record, out.with_name(out.stem + ".training.json"))
    return out, k


# -- 3. sensitivity ------------------------------------------------------------------------------------
def sensitivity(folder: Path) -> str:
    data = ["--data", str(MNIST_TEST)] if MNIST_TEST.exists() else []
    run = kerasml(folder, "diff", "digits.keras", "--sensitivity", "--precision", "palette4", *data)
    here = "../shared/data/mnist-test"    # as a user in a checkout types it
    return block((run[0].replace(str(MNIST_TEST), here), run[1].replace(str(MNIST_TEST.resolve()), here)))


if __name__ == "__main__":
    main()
