"""`.aimodel` files: written atomically with kerasml's metadata, and checked before anything runs them.

An `.aimodel` is a folder: `main.mlirb` (the program as MLIR bytecode, weights inside), `main.hash`
(its SHA-256) and `metadata.json` (author, licence, description and creator-defined values). Core
AI's own metadata has fields for the author, licence and description; everything else kerasml
knows (labels, how pixels are scaled, provenance, the model's version) goes into the
creator-defined metadata under the same `com.kerasml.*` keys, with the same string values, that a
Core ML file made by kerasml carries — one decoder reads both, in Python and in the app.

Apple's loader trusts the folder: damaged bytecode can take the whole process down, even with a
matching hash. So `check_asset` proves the folder whole first — every file present and inside the
folder, the hash matching, the metadata JSON, the program parsed by Apple's parser in a child
process — and the commands refuse a damaged one in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

from kerasml.libs import coreai_authoring, coreai_runtime
from kerasml.errors import KerasmlError
from kerasml.files import atomic_output
from kerasml.record import metadata_key

SUFFIX = ".aimodel"
BYTECODE, HASH, METADATA = "main.mlirb", "main.hash", "metadata.json"
LABELS_KEY = metadata_key("labels")                # JSON text of the label list: Core AI has no labels field
VERSION_KEY = metadata_key("model_version")        # Core AI's metadata has no version field


@dataclasses.dataclass
class AssetMetadata:
    """Core AI's own fields and the creator-defined strings (`com.kerasml.*` and any others)."""

    author: str = ""
    license: str = ""
    description: str = ""
    creator_defined: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def labels(self) -> list | None:
        text = self.creator_defined.get(LABELS_KEY)
        if text is None:
            return None
        try:
            labels = json.loads(text)
        except ValueError:
            labels = None
        if not isinstance(labels, list) or not labels:
            raise KerasmlError(f"the model's {LABELS_KEY} metadata is not a list of labels; convert the model again")
        return labels

    @property
    def version(self) -> str:
        return self.creator_defined.get(VERSION_KEY, "")


def write_asset(module, path: Path, metadata: AssetMetadata, force: bool = False) -> None:
    """Save a lowered module as `path` (.aimodel), nothing half-written if anything fails."""
    A = coreai_authoring()
    R = coreai_runtime()
    info = R.AIModelAssetMetadata()
    info.author, info.license, info.model_description = metadata.author, metadata.license, metadata.description
    for key, value in metadata.creator_defined.items():
        info.set_custom(key, str(value))
    with atomic_output(Path(path), force=force) as temporary:
        try:
            A.AIProgram(module).save_asset(temporary, metadata=info)
        except (RuntimeError, ValueError) as exc:
            raise KerasmlError(f"Core AI could not save the program ({_first_line(exc)}); "
                               "this is a kerasml bug: please report it with the model") from None


def check_asset(path: Path) -> AssetMetadata:
    """The asset's metadata, once its folder is proven whole; one clear error otherwise."""
    path = Path(path)
    if not path.exists():
        raise KerasmlError(f"{path} does not exist; pass an .aimodel folder")
    if not path.is_dir():
        raise KerasmlError(f"{path} is not an .aimodel (a Core AI model is a folder); convert the model again")
    root = path.resolve()
    for name in (BYTECODE, HASH, METADATA):
        item = path / name
        if not item.exists():
            raise KerasmlError(f"{path} is incomplete: {name} is missing; convert the model again")
        if not item.resolve().is_relative_to(root) or not item.is_file():
            raise KerasmlError(f"{path}/{name} points outside the model folder; kerasml reads nothing outside "
                               "it: convert the model again")
    for item in path.rglob("*"):
        if item.is_symlink() and not item.resolve().is_relative_to(root):
            raise KerasmlError(f"{item} points outside the model folder; kerasml reads nothing outside it: "
                               "convert the model again")
    digest = hashlib.sha256((path / BYTECODE).read_bytes()).digest()
    if (path / HASH).read_bytes() != digest:
        raise KerasmlError(f"{path} is damaged: {BYTECODE} does not match its hash (truncated or changed "
                           "after it was written); convert the model again")
    metadata = _read_metadata(path)
    _probe_program(path)
    return metadata


def _read_metadata(path: Path) -> AssetMetadata:
    try:
        data = json.loads((path / METADATA).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise KerasmlError(f"{path}/{METADATA} is not valid JSON ({exc}); convert the model again") from None
    custom = data.get("creatorDefinedMetadata") or {}
    if not isinstance(custom, dict):
        raise KerasmlError(f"{path}/{METADATA} has creator-defined metadata that is not an object; "
                           "convert the model again")
    text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in custom.items()}
    return AssetMetadata(str(data.get("author", "")), str(data.get("license", "")),
                         str(data.get("description", "")), text)


def _probe_program(path: Path) -> None:
    """Parse the program in a child process first: Apple's parser aborts the whole process on
    bytecode it cannot read (even with a matching hash), and a kerasml command must instead say so."""
    context = coreai_authoring().Context()._mlir_context      # first: one clear line when coreai-core is missing
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return
    from coreai._compiler._mlir_libs._coreaiIR._bindings.compiler import load_module_from_bytecode

    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:                                  # the child: parse, then leave without cleanup
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            load_module_from_bytecode(context=context, path=path / BYTECODE)
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise KerasmlError(f"{path} is damaged: Apple's Core AI cannot read its program (main.mlirb); "
                           "convert the model again")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
