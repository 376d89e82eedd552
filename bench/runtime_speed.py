"""kerasml's NumPy runtime (both Core ML formats) and Apple's Core AI runtime (.aimodel) against
Keras `model.predict`, on the same images.

Each model is converted to .mlmodel (NeuralNetwork), .mlpackage (ML Program) and .aimodel (Core AI,
lowered from that ML Program; run by Apple's CPU runtime from coreai-core); then, after one warm-up
call of each, Keras `predict` and the runtime's `predict_probabilities` take turns on the same batch
`REPEATS` times (interleaved, so load from other processes hits both alike), and a row gives their
median seconds, the ratio runtime / Keras (the goal for kerasml's runtime: at most 1.5) and, for the
.aimodel, Apple's runtime against kerasml's on the .mlpackage. `convert_s` is each conversion's time
in this process (TensorFlow already loaded).

    PYTHONPATH=$PWD .venv/bin/python bench/runtime_speed.py                   # the three bench models
    PYTHONPATH=$PWD .venv/bin/python bench/runtime_speed.py MobileNetV2 ResNet50V2 --formats mlpackage

Models: "digits" (kerasml's default digit CNN on the 10,000 real MNIST test digits, or as many
random ones without them; models/digits.keras when it exists, else seeded random weights),
"ResNet50" (64x64) and "MobileNetV2" (96x96, alpha 0.35), batch 64, random weights; any other name
is a case of bench/zoo_cases.py, at the zoo's input size. `measure()` and `markdown()` are what
`make bench` (bench/run.py) calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

FORMATS = ("mlmodel", "mlpackage", "aimodel")
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
BATCH = 64
DEFAULT_MODELS = ["digits", "ResNet50", "MobileNetV2"]
MNIST_TEST = REPO.parent / "shared" / "data" / "mnist-test"
DIGITS_MODEL = REPO / "models" / "digits.keras"


def _keras():
    from kerasml.libs import tensorflow

    tensorflow()
    import keras

    return keras


def _application(name: str, size: int, **kwargs) -> Callable:
    def build():
        keras = _keras()
        keras.utils.set_random_seed(7)
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10, **kwargs)
    return build


def _digits_model():
    keras = _keras()
    if DIGITS_MODEL.is_file():
        return keras.models.load_model(DIGITS_MODEL)
    from kerasml.training.architectures import kerasml_digits

    keras.utils.set_random_seed(7)   # speed does not depend on the weights' values
    return kerasml_digits((28, 28, 1), 10)


def _digit_images(batch: int) -> np.ndarray:
    if (MNIST_TEST / "t10k-images-idx3-ubyte.gz").is_file():
        from kerasml.data.idx import read_idx

        return read_idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz")[:batch]
    return np.random.default_rng(1).integers(0, 256, (batch, 28, 28), dtype=np.uint8)


# name -> (builder, batch); images come from the converted model's input size
BENCH_MODELS: dict[str, tuple[Callable, int]] = {
    "digits": (_digits_model, 10_000),
    "ResNet50": (_application("ResNet50", 64), BATCH),
    "MobileNetV2": (_application("MobileNetV2", 96, alpha=0.35), BATCH),
}


def _builder(name: str) -> tuple[Callable, int]:
    if name in BENCH_MODELS:
        return BENCH_MODELS[name]
    from zoo_cases import case_named

    return case_named(name).build, BATCH


def _images(name: str, coreml, batch: int) -> np.ndarray:
    if name == "digits":
        return _digit_images(batch)
    image = coreml.image
    shape = (batch, image.height, image.width) + ((image.channels,) if image.channels > 1 else ())
    return np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)


def _keras_inputs(images: np.ndarray, coreml, keras_model) -> np.ndarray:
    """What Keras sees for the raw pixels the runtime gets: pixel * scale + bias, in the model's shape."""
    image = coreml.image
    pixels = images.reshape(len(images), image.height, image.width, image.channels).astype(np.float32)
    if image.colour == "bgr":
        pixels = pixels[..., ::-1]
    x = pixels * np.float32(image.scale) + np.asarray(image.bias, np.float32)
    return x.reshape((len(images), *keras_model.input_shape[1:]))


def time_pair(keras_model, coreml, images: np.ndarray, repeats: int = REPEATS) -> dict:
    """Median seconds of Keras predict and of the runtime on the same images, taking turns."""
    x = _keras_inputs(images, coreml, keras_model)
    expected = keras_model.predict(x, verbose=0)       # warm-up: traces Keras' predict function
    actual = coreml.predict_probabilities(images)      # warm-up: the runtime's buffers
    keras_times, runtime_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        keras_model.predict(x, verbose=0)
        keras_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        coreml.predict_probabilities(images)
        runtime_times.append(time.perf_counter() - started)
    keras_s, runtime_s = statistics.median(keras_times), statistics.median(runtime_times)
    return {"keras_s": keras_s, "runtime_s": runtime_s, "ratio": runtime_s / keras_s,
            "max_abs_diff": float(np.abs(actual - expected.reshape(actual.shape)).max())}


def measure(names: list[str] | None = None, formats: tuple[str, ...] = FORMATS, repeats: int = REPEATS,
            say: Callable[[str], None] = lambda m: None) -> list[dict]:
    """One row per model and format: model, format, batch, keras_s, runtime_s, ratio, max_abs_diff."""
    from kerasml.checks.compare import load_classifier
    from kerasml.conversion.to_coreai import convert as convert_aimodel
    from kerasml.conversion.to_coreml import ConvertOptions, convert

    rows = []
    with tempfile.TemporaryDirectory(prefix="kerasml-speed-") as tmp:
        for name in names or DEFAULT_MODELS:
            build, batch = _builder(name)
            keras_model = build()
            keras_path = Path(tmp) / f"{name}.keras"
            keras_model.save(keras_path)
            for fmt in formats:
                say(f"{name} {fmt}: converting")
                out = keras_path.with_suffix("." + fmt)
                started = time.perf_counter()
                (convert_aimodel if fmt == "aimodel" else convert)(
                    ConvertOptions(model=keras_path, labels=",".join(f"class{i}" for i in range(10)), out=out,
                                   format=fmt, force=True), say=lambda m: None, warn=lambda m: None)
                convert_s = time.perf_counter() - started
                coreml = load_classifier(out)
                images = _images(name, coreml, batch)
                say(f"{name} {fmt}: timing {len(images)} images, {repeats} repeats")
                row = {"model": name, "format": fmt, "batch": len(images), "convert_s": convert_s,
                       "runtime": coreml.runtime_name}
                row.update(time_pair(keras_model, coreml, images, repeats))
                say(f"{name} {fmt}: {row['runtime_s']:.3f} s against {row['keras_s']:.3f} s ({row['ratio']:.2f}x)")
                rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """One row per model and format; the .aimodel rows also give Apple's runtime against kerasml's
    on the .mlpackage, and its conversion time against the .mlpackage's."""
    package = {r["model"]: r for r in rows if r["format"] == "mlpackage"}
    lines = ["| model | format | runtime | batch | Keras predict s | runtime s | runtime / Keras "
             "| Apple / kerasml (.mlpackage) | convert s | max \\|Δp\\| |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        versus = package.get(r["model"]) if r["format"] == "aimodel" else None
        apple = f"{r['runtime_s'] / versus['runtime_s']:.2f}x" if versus else "-"
        convert = f"{r['convert_s']:.1f}" if "convert_s" in r else "-"
        if versus and "convert_s" in versus:
            convert += f" ({r['convert_s'] / versus['convert_s']:.2f}x)"
        lines.append(f"| {r['model']} | {r['format']} | {r.get('runtime', 'kerasml runtime')} | {r['batch']:,} "
                     f"| {r['keras_s']:.3f} | {r['runtime_s']:.3f} | {r['ratio']:.2f}x | {apple} | {convert} "
                     f"| {r.get('max_abs_diff', float('nan')):.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"models (default: {' '.join(DEFAULT_MODELS)}) or zoo case names")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)
    rows = measure(args.names or None, formats, args.repeats, say=lambda m: print(f"[speed] {m}", flush=True))
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
