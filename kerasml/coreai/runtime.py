"""An `.aimodel` run by Apple's Core AI runtime, behind the interface kerasml's own runtime offers
(`image`, `labels`, `predict_probabilities`), so verify, evaluate, predict, report and try take
either kind of model.

On Linux Apple's runtime compiles the program for its portable CPU backend when the model loads
(a second or two for a large network) and runs it there: no Neural Engine, GPU or image inputs.
It is asynchronous; kerasml keeps one event loop per model in a thread of its own, so a model is
compiled once and any thread (the try page's workers) can call it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import weakref
from pathlib import Path

import numpy as np

from kerasml.model.aimodel import AssetMetadata, check_asset
from kerasml.libs import coreai_authoring, coreai_runtime, coreai_notes_muted, coreai_version
from kerasml.coreai.lowering import FUNCTION, INPUT, OUTPUT
from kerasml.errors import KerasmlError
from kerasml.record import Preprocessing, metadata_key
from kerasml.runtime.model import ImageInput

RUNTIME_NAME = "Apple Core AI runtime"    # what computed the model, in verify's table and the try page
_CHUNK = 256            # images per call: large enough for the CPU backend, small enough for memory


def load_aimodel(path: Path) -> "CoreAIModel":
    """A kerasml `.aimodel`, checked whole, loaded into Apple's runtime."""
    return CoreAIModel(Path(path))


class CoreAIModel:
    model_type = "aimodel"
    kind = "Core AI"
    runtime_name = RUNTIME_NAME

    def __init__(self, path: Path):
        self.path = path
        self.metadata: AssetMetadata = check_asset(path)
        self.labels = self.metadata.labels
        if self.labels is None:
            raise KerasmlError(f"{path} has no {metadata_key('labels')} metadata: it was not made by kerasml, "
                               "which runs the Core AI models it converts")
        self.image = _image_input(path, self.metadata)
        self.input_name, self.output_names = INPUT, [OUTPUT]
        self.weight_precision = self.metadata.creator_defined.get(metadata_key("precision"), "fp32")
        self.runtime_detail = _backend()
        self._session = _Session(path)
        # closed when the model is collected, or at exit while the event loop's thread still runs
        self._finalizer = weakref.finalize(self, self._session.close)

    @property
    def creator_defined(self) -> dict[str, str]:
        return dict(self.metadata.creator_defined)

    @property
    def about(self) -> dict[str, str]:
        m = self.metadata
        return {"description": m.description, "author": m.author, "license": m.license, "version": m.version}

    def __repr__(self) -> str:
        return f"<CoreAIModel {self.path.name} input={self.image.height}x{self.image.width}x{self.image.channels}>"

    # -- running ---------------------------------------------------------------------------------
    def predict_probabilities(self, images: np.ndarray, batch_size: int = _CHUNK) -> np.ndarray:
        """Class probabilities (N, classes), in label order, for raw 0-255 pixels (N, H, W[, C]), RGB."""
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        image = self.image
        if x.ndim != 4:
            raise KerasmlError(f"expected images of shape (N, H, W) or (N, H, W, C), got {x.shape}")
        if x.shape[1:3] != (image.height, image.width):
            raise KerasmlError(f"the model takes {image.height}x{image.width} images, got {x.shape[1]}x{x.shape[2]}; "
                               "resize them first")
        if x.shape[3] != image.channels:
            raise KerasmlError(f"the model takes {image.colour} images ({image.channels} channels), "
                               f"got {x.shape[3]} channels")
        if not len(x):
            return np.zeros((0, len(self.labels)), np.float32)
        step = max(1, min(int(batch_size), _CHUNK))
        session = self._session
        rows = [session.call(session.run(np.ascontiguousarray(x[i:i + step], dtype=np.float32)))
                for i in range(0, len(x), step)]
        return np.concatenate(rows).astype(np.float32, copy=False)

    def close(self) -> None:
        self._finalizer()


class _Session:
    """The loaded model and the event loop, in a thread of its own, that every call goes through."""

    def __init__(self, path: Path):
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"coreai {path.name}", daemon=True)
        self.thread.start()
        self.lock = threading.Lock()
        self.context = self.function = None
        try:
            self.call(self._open())
        except BaseException:
            self.close()
            raise

    def call(self, coroutine, timeout: float | None = None):
        with self.lock:
            return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _open(self) -> None:
        self.context = coreai_authoring().AIModelAsset.load(self.path).executable()
        try:
            with coreai_notes_muted():
                model = await self.context.__aenter__()
                self.function = model.load_function(FUNCTION)
        except RuntimeError as exc:
            raise KerasmlError(f"Apple's Core AI runtime cannot load {self.path} ({_first_line(exc)}); "
                               "convert the model again") from None

    async def run(self, pixels: np.ndarray) -> np.ndarray:
        try:
            outputs = await self.function({INPUT: coreai_runtime().NDArray(pixels)})
        except RuntimeError as exc:
            raise KerasmlError(f"Apple's Core AI runtime failed on {self.path} ({_first_line(exc)})") from None
        return np.array(outputs[OUTPUT].numpy(), dtype=np.float32)

    async def _release(self) -> None:
        self.function = None
        if self.context is not None:
            context, self.context = self.context, None
            await context.__aexit__(None, None, None)

    def close(self) -> None:
        """Release the model and stop the loop; bounded in time, so exit never hangs on it."""
        if self.loop.is_closed():
            return
        try:
            if self.thread.is_alive():
                self.call(self._release(), timeout=10)
        except Exception:  # a model that failed to load, or the loop already stopping: nothing to release
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def _image_input(path: Path, metadata: AssetMetadata) -> ImageInput:
    """The pixels `classify` takes and, from kerasml's metadata, how the model scales them."""
    text = metadata.creator_defined.get(metadata_key("preprocessing"))
    try:
        data = json.loads(text) if text else None
        preprocessing = Preprocessing(**data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        preprocessing = None
    if preprocessing is None:
        raise KerasmlError(f"{path} has no valid {metadata_key('preprocessing')} metadata: it was not made by "
                           "kerasml, which runs the Core AI models it converts")
    bias = list(preprocessing.bias) * (preprocessing.channels if len(preprocessing.bias) == 1 else 1)
    return ImageInput(INPUT, preprocessing.height, preprocessing.width, preprocessing.channels,
                      preprocessing.colour, float(preprocessing.scale), tuple(float(b) for b in bias))


def _backend() -> str:
    return f"coreai-core {coreai_version()}, CPU" if sys.platform != "darwin" else f"coreai-core {coreai_version()}"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
