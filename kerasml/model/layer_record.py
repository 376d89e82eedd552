"""The layer record: which Keras layer each value of a converted model came from, kept in the model
itself (`com.kerasml.layers`: {Keras layer: the name of the last value computed for it}), so
`kerasml diff` can compare the two models layer by Keras layer. Conversion writes it
(conversion/layers.py works it out); diff, `--precision auto` and `diff --sensitivity` read it, from
Core ML's user-defined metadata or Core AI's creator-defined strings alike.
"""

from __future__ import annotations

import json

from kerasml.record import metadata_key

KEY = metadata_key("layers")


def write(mlmodel, record: dict[str, str]) -> None:
    write_to(mlmodel.user_defined_metadata, record)


def write_to(metadata, record: dict[str, str]) -> None:
    """Into a metadata mapping: Core ML's user-defined metadata or Core AI's creator-defined strings."""
    if record:
        metadata[KEY] = json.dumps(record, separators=(",", ":"))


def read(metadata: dict[str, str]) -> dict[str, str] | None:
    """The record a converted model carries (Core ML user-defined or Core AI creator-defined), or None."""
    text = metadata.get(KEY)
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not all(isinstance(v, str) for v in record.values()):
        return None
    return record
