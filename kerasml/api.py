"""kerasml from Python: the functions behind the commands, one per pipeline stage.

    import kerasml

    trained = kerasml.train(dataset="mnist-sample", out="digits.keras", epochs=3)
    converted = kerasml.convert("digits.keras", labels="digits", out="Digits.mlpackage")
    print("\\n".join(kerasml.verify("Digits.mlpackage", "digits.keras").lines()))

Each takes the options its command takes (`kerasml COMMAND --help`), as keyword arguments with the
same names, and returns the result object the command prints (`.lines()`, `.to_dict()` where the
command has `--json`). Bad input raises `kerasml.KerasmlError` with the one line the command prints.
`import kerasml` stays light: each function imports its stage when called. `say` (and `warn`)
receive the progress lines the command prints; by default they are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

Say = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


def train(out: str | Path = "models/digits.keras", *, say: Say | None = None, **options):
    """Train an image classifier (`kerasml train`): `dataset` ("mnist", "mnist-sample", "fashion")
    or `data` (an .npz, IDX folder or class folders), `arch`, `epochs`, ... as TrainOptions names
    them. Writes the .keras model and its training record; returns a `TrainResult`."""
    from kerasml.training.options import TrainOptions
    from kerasml.training.train import train as run

    return run(TrainOptions(out=Path(out), **options), say=say or _quiet)


def convert(model: str | Path, *, say: Say | None = None, warn: Say | None = None, **options):
    """Convert a Keras model to Core ML or Core AI (`kerasml convert`): `labels`, `out`, `format`
    ("mlmodel", "mlpackage" or "aimodel"; default from `out`'s suffix), `precision`, ... as
    ConvertOptions names them. Returns a `ConvertResult` (`.path`, `.summary_lines()`)."""
    from kerasml.conversion import convert as run
    from kerasml.conversion.to_coreml import ConvertOptions

    for key in ("out", "data"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    return run(ConvertOptions(model=Path(model), **options), say=say or _quiet, warn=warn or _quiet)


def verify(converted: str | Path, keras: str | Path, *, data: str | Path | None = None,
           samples: int | None = None, atol: float | None = None, unsafe: bool = False):
    """Prove a converted model computes what its Keras model computes (`kerasml verify`), run by
    kerasml's runtime (Core ML) or Apple's (Core AI). Returns a `VerifyResult` (`.passed`, `.lines()`)."""
    from kerasml.checks.verify import verify as run

    return run(Path(converted), Path(keras), data=_path(data), samples=samples, atol=atol, unsafe=unsafe)


def evaluate(model: str | Path, *, data: str | Path | None = None, plot: str | Path | None = None):
    """Accuracy and confusion matrix of a converted model on labelled images (`kerasml evaluate`);
    the images by kerasml's one policy (model/images.py). Returns an `EvaluateResult`."""
    from kerasml.checks.evaluate import evaluate as run

    return run(Path(model), data=_path(data), plot=_path(plot))


def predict(model: str | Path, images: str | Path | Sequence[str | Path], *, top: int = 3, raw: bool = False):
    """Classify image files as the app would (`kerasml predict`): a list of `Prediction`s, each with
    its ranked `top` guesses and how the picture was prepared."""
    from kerasml.checks.predict import predict as run

    files = [images] if isinstance(images, (str, Path)) else list(images)
    return run(Path(model), [Path(f) for f in files], top=top, raw=raw)


def prepare_photo(pixels):
    """A photo of one digit ((H, W) or (H, W, 3) uint8 array) → the 28x28 MNIST-style image, as the
    app prepares it; returns a `PhotoPreparation` (`.image`, `.steps`, `.notes`)."""
    from kerasml.preprocess import prepare_photo as run

    return run(pixels)


def diff(keras: str | Path, converted: str | Path, *, data: str | Path | None = None,
         samples: int | None = None, compute: str = "fp32", tolerance: float | None = None,
         unsafe: bool = False):
    """Where a converted model departs from its Keras model, layer by Keras layer (`kerasml diff`).
    Returns a `DiffResult` (`.first_divergent_layer`, `.rows`, `.lines()`)."""
    from kerasml.checks.diff import diff as run

    return run(Path(keras), Path(converted), data=_path(data), samples=samples, compute=compute,
               tolerance=tolerance, unsafe=unsafe)


def _path(value) -> Path | None:
    return None if value is None else Path(value)
