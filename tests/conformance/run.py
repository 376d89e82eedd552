"""`make conformance`: coremltools' installed op tests against kerasml's runtime, one table per file.

    python tests/conformance/run.py                      # every file (tens of minutes on 2 cores)
    python tests/conformance/run.py iOS14/test_activation.py iOS17 -k relu

The files are shared out over `--jobs` pytest processes with tests/conformance/plugin.py loaded
(one process imports TensorFlow and coremltools once for all its files). Results are merged by file into bench/conformance.json, so running a few files updates just
their rows; bench/conformance.md is written from the merged results and printed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INI = REPO / "tests" / "conformance" / "conformance.ini"
CATEGORIES = ("passed", "refused", "wrong", "crashed", "skipped", "no-prediction", "test-error")
RUN = ("passed", "refused", "wrong", "crashed")  # cases where the runtime was asked for a prediction


def tests_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("coremltools")
    if spec is None or not spec.origin:
        sys.exit("error: coremltools is not installed in this Python; run `make venv` first")
    return Path(spec.origin).parent / "converters" / "mil" / "mil" / "ops" / "tests"


def select_files(root: Path, names: list[str]) -> list[Path]:
    every = sorted(root.glob("iOS1*/test_*.py"))
    if not names:
        return every
    chosen = []
    for name in names:
        hits = [f for f in every if f"{f.parent.name}/{f.name}".startswith(name.removesuffix("/")) or f.name == name]
        if not hits:
            sys.exit(f"error: no coremltools op test file matches {name!r}; try e.g. iOS14/test_activation.py")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def run_group(paths: list[Path], keyword: str | None, timeout: int, per_class: int = 0) -> dict[str, dict]:
    """Results per file ('iOS14/test_x.py') of one pytest process over `paths`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        cmd = [sys.executable, "-m", "pytest", "-c", str(INI), *map(str, paths), "--conformance-out", str(out),
               "--continue-on-collection-errors"]
        cmd += ["-k", keyword] if keyword else []
        cmd += ["--conformance-slice", str(per_class)] if per_class else []
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        try:
            subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    results = {}
    for path in paths:
        name = f"{path.parent.name}/{path.name}"
        mine = [r for r in records if r["file"] == name]
        cases = [r for r in mine if r["category"] in CATEGORIES]
        counts = Counter(r["category"] for r in cases)
        result = {"file": name, "seconds": round(sum(r["seconds"] for r in mine), 1),
                  "counts": {c: counts.get(c, 0) for c in CATEGORIES}}
        result["details"] = [r for r in cases if r["category"] in ("wrong", "crashed", "refused", "skipped", "test-error")]
        errors = [r["message"] for r in mine if r["category"] == "collection-error"]
        if errors:
            result["error"] = "skipped: " + errors[0] if errors[0].startswith("needs ") else "not collected: " + errors[0]
        elif timed_out and not cases:
            result["error"] = f"not reached: the run timed out after {timeout} s"
        elif timed_out:
            result["error"] = f"the run timed out after {timeout} s; results so far are counted"
        results[name] = result
    return results


def _key(message: str) -> str:
    """What a refusal is about: the op or layer type it names, else the start of the message."""
    layer = re.search(r"layer '([^']+)' has type '([^']+)'", message)
    if layer:  # NeuralNetwork: the layer's kind and the name coremltools gave it (e.g. activation: prelu)
        return f"NeuralNetwork {layer.group(2)}: {re.sub(r'_[0-9]+$', '', layer.group(1))}"
    for pattern in (r"has type '([^']+)'", r"op '[^']*' \(([A-Za-z_0-9]+)\)"):
        m = re.search(pattern, message)
        if m:
            return f"ML Program {m.group(1)}"
    return message[:90]


def render(results: dict, command: str) -> str:
    totals = Counter()
    for r in results.values():
        totals.update(r["counts"])
    run = sum(totals[c] for c in RUN)
    rate = f"{100 * totals['passed'] / run:.1f}%" if run else "n/a"
    lines = [
        "# Conformance: coremltools' op tests against kerasml's runtime",
        "",
        f"Command: `{command}`. Passed {totals['passed']:,} of {run:,} run cases ({rate}); "
        f"{totals['wrong']} wrong, {totals['crashed']} crashed.",
        "",
        "Run cases are those that asked the runtime for a prediction: passed, refused (a clean "
        "UnsupportedModelError naming the op), wrong (the prediction differs from the expected output) and "
        "crashed (any other exception). Skipped tests (with the reason below) and tests that pass without "
        "asking for a prediction are not counted in the rate; nor are test errors (coremltools' test failed on its "
        "own before it asked for a prediction, e.g. a timing check on a loaded machine).",
        "",
        "| file | passed | refused | wrong | crashed | skipped | no prediction | test error | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(results):
        r = results[name]
        c = r["counts"]
        note = f" ({r['error']})" if r.get("error") else ""
        lines.append(
            f"| {name}{note} | {c['passed']} | {c['refused']} | {c['wrong']} | {c['crashed']} | {c['skipped']} "
            f"| {c['no-prediction']} | {c.get('test-error', 0)} | {r['seconds']:.0f} |"
        )
    lines.append(
        f"| **all** | {totals['passed']} | {totals['refused']} | {totals['wrong']} | {totals['crashed']} "
        f"| {totals['skipped']} | {totals['no-prediction']} | {totals['test-error']} "
        f"| {sum(r['seconds'] for r in results.values()):.0f} |"
    )
    lines += _details(results)
    return "\n".join(lines) + "\n"


def _details(results: dict) -> list[str]:
    out = []
    for category in ("wrong", "crashed", "test-error"):
        rows = [(n, d) for n, r in sorted(results.items()) for d in r["details"] if d["category"] == category]
        if rows:
            out += ["", f"## {category} ({len(rows)})", ""]
            out += [f"- {n} `{d['nodeid'].split('::', 1)[-1][:160]}`: {d['message'][:200]}" for n, d in rows]
    for category, title in (("refused", "What is refused (by op or layer)"), ("skipped", "Why tests are skipped")):
        reasons = Counter(_key(d["message"]) if category == "refused" else d["message"][:120]
                          for r in results.values() for d in r["details"] if d["category"] == category)
        if reasons:
            out += ["", f"## {title}", ""]
            out += [f"- {count} × {reason}" for reason, count in reasons.most_common()]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="test files or folders, e.g. iOS14/test_activation.py or iOS17")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression, to run a subset")
    parser.add_argument("--slice", type=int, default=0, help="only N tests per file, spread over its smoke tests (a quick look)")
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes, each taking a share of the files (default 2)")
    parser.add_argument("--timeout", type=int, default=5400, help="seconds per process (default 5400)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "conformance", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    files = select_files(tests_root(), args.files)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    merged = json.loads(json_path.read_text())["files"] if json_path.exists() else {}
    print(f"running {len(files)} coremltools op test file(s), {args.jobs} at a time", flush=True)
    groups = [files[i :: max(1, args.jobs)] for i in range(max(1, args.jobs))]
    with concurrent.futures.ThreadPoolExecutor(len(groups)) as pool:
        futures = [pool.submit(run_group, g, args.keyword, args.timeout, args.slice) for g in groups if g]
        for future in concurrent.futures.as_completed(futures):
            for name, r in future.result().items():
                merged[name] = r
                c = r["counts"]
                print(f"  {name}: {c['passed']} passed, {c['refused']} refused, {c['wrong']} wrong, "
                      f"{c['crashed']} crashed, {c['skipped']} skipped ({r['seconds']:.0f} s)"
                      f"{' ' + r['error'] if r.get('error') else ''}", flush=True)
    command = "make conformance" if not (args.files or args.keyword or args.slice) else "python tests/conformance/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = render(merged, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(json_path, json.dumps({"command": command, "files": merged}, indent=1) + "\n")
    _atomic_write(md_path, text)
    print(text.split("\n## ")[0])
    bad = sum(r["counts"]["wrong"] + r["counts"]["crashed"] for r in merged.values())
    return 1 if bad else 0


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
