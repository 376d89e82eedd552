"""What is inside an `.aimodel`: its function's signature, its metadata (Core AI's own fields and the
`com.kerasml.*` ones), the operations its program holds and how its weights are stored, read through
Apple's own asset reader once the folder is proven whole (asset.check_asset)."""

from __future__ import annotations

import json
from pathlib import Path

from kerasml.model.aimodel import LABELS_KEY, check_asset
from kerasml.libs import coreai_authoring, coreai_notes_muted
from kerasml.files import path_size
from kerasml.record import metadata_key


def inspect_aimodel(path: Path) -> dict:
    path = Path(path)
    metadata = check_asset(path)
    with coreai_notes_muted():
        summary = coreai_authoring().AIModelAsset.load(path).summary(include_statistics=True)
    functions = []
    for name in summary.function_names:
        functions.append({"name": name,
                          "inputs": [{"name": n, "type": t} for n, t in summary.function_inputs(name)],
                          "outputs": [{"name": n, "type": t} for n, t in summary.function_outputs(name)]})
    custom = metadata.creator_defined
    preprocessing = custom.get(metadata_key("preprocessing"))
    return {
        "file": str(path),
        "format": "aimodel",
        "size_bytes": path_size(path),
        "minimum_os": summary._compatibility_version,     # noqa: SLF001  the summary's only OS field in b3
        "functions": functions,
        "class_labels": metadata.labels,
        "preprocessing": json.loads(preprocessing) if preprocessing else None,
        "metadata": {"description": metadata.description, "author": metadata.author, "license": metadata.license,
                     "version": metadata.version,
                     "creator_defined": {k: v for k, v in custom.items() if k != LABELS_KEY}},
        "operations": dict(summary.operation_distribution),
        "storage_types": dict(summary.storage_types),
    }


def format_aimodel_report(report: dict) -> str:
    lines = [f"{report['file']}  (Core AI .aimodel, {report['size_bytes'] / 1024:.1f} KiB, "
             f"needs iOS/macOS {report['minimum_os'] or '27'}+)"]
    meta = report["metadata"]
    for key in ("description", "author", "license", "version"):
        if meta[key]:
            lines.append(f"  {key}: {meta[key]}")
    for function in report["functions"]:
        lines.append(f"  function {function['name']}:")
        lines += [f"    input  {f['name']}: {f['type']}" for f in function["inputs"]]
        lines += [f"    output {f['name']}: {f['type']}" for f in function["outputs"]]
    labels = report["class_labels"] or []
    if labels:
        shown = ", ".join(map(str, labels[:10])) + (", ..." if len(labels) > 10 else "")
        lines.append(f"  labels: {len(labels)} ({shown})")
    p = report["preprocessing"]
    if p:
        lines.append(f"  pixels: {p['width']}x{p['height']}, {p['channels']} channel(s), {p['ink']}; inside, "
                     f"x {p['scale']:.6g} + {p['bias']} ({p['channel_order']} order)")
    weights = sorted(report["storage_types"].items(), key=lambda kv: -kv[1])
    lines.append("  stored values: " + ", ".join(f"{n:,} {t}" for t, n in weights))
    operations = sorted(report["operations"].items(), key=lambda kv: -kv[1])
    lines.append(f"  operations ({sum(report['operations'].values()):,}): "
                 + ", ".join(f"{name} {count}" for name, count in operations[:12])
                 + (", ..." if len(operations) > 12 else ""))
    custom = meta["creator_defined"]
    if custom:
        lines.append("  creator-defined metadata:")
        for key in sorted(custom):
            value = custom[key]
            lines.append(f"    {key}: {value if len(value) <= 100 else value[:97] + '...'}")
    return "\n".join(lines)
