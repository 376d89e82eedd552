"""`make conformance`: coremltools' installed op tests against kerasml's runtime, one table per file.

    python tests/conformance/run.py                      # every file (tens of minutes on 2 cores)
    python tests/conformance/run.py iOS14/test_activation.py iOS17 -k relu

Each test file runs in its own pytest process (`--jobs` at a time) with tests/conformance/plugin.py
loaded. Results are merged by file into bench/conformance.json, so running a few files updates just
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
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INI = REPO / "tests" / "conformance" / "pytest.ini"
CATEGORIES = ("passed", "refused", "wrong", "crashed", "skipped", "no-prediction")
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


def run_file(path: Path, keyword: str | None, timeout: int) -> dict:
    """One file's results: counts, the wrong/crashed/refused details, and its time."""
    name = f"{path.parent.name}/{path.name}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        cmd = [sys.executable, "-m", "pytest", "-c", str(INI), str(path), "--conformance-out", str(out)]
        cmd += ["-k", keyword] if keyword else []
        env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
            tail, timed_out = (proc.stdout + proc.stderr)[-3000:], False
        except subprocess.TimeoutExpired as exc:
            tail, timed_out = str(exc.stdout or "")[-3000:], True
        seconds = time.monotonic() - start
        records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    counts = Counter(r["category"] for r in records)
    result = {"file": name, "seconds": round(seconds, 1), "counts": {c: counts.get(c, 0) for c in CATEGORIES}}
    result["details"] = [r for r in records if r["category"] in ("wrong", "crashed", "refused", "skipped")]
    if timed_out:
        result["error"] = f"timed out after {timeout} s (results so far are counted)"
    elif not records:
        result["error"] = _collection_error(tail)
    return result


def _collection_error(tail: str) -> str:
    missing = re.search(r"No module named '([\w.]+)'", tail)
    if missing:
        return f"skipped: the file needs {missing.group(1)} (not installed)"
    lines = [ln for ln in tail.splitlines() if ln.startswith("E ") or "Error" in ln]
    return "no test ran: " + (lines[-1].strip() if lines else "see pytest output")


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
        "asking for a prediction are not counted in the rate.",
        "",
        "| file | passed | refused | wrong | crashed | skipped | no prediction | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(results):
        r = results[name]
        c = r["counts"]
        note = f" ({r['error']})" if r.get("error") else ""
        lines.append(
            f"| {name}{note} | {c['passed']} | {c['refused']} | {c['wrong']} | {c['crashed']} | {c['skipped']} "
            f"| {c['no-prediction']} | {r['seconds']:.0f} |"
        )
    lines.append(
        f"| **all** | {totals['passed']} | {totals['refused']} | {totals['wrong']} | {totals['crashed']} "
        f"| {totals['skipped']} | {totals['no-prediction']} | {sum(r['seconds'] for r in results.values()):.0f} |"
    )
    lines += _details(results)
    return "\n".join(lines) + "\n"


def _details(results: dict) -> list[str]:
    out = []
    for category in ("wrong", "crashed"):
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
    parser.add_argument("--jobs", type=int, default=2, help="files run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per file (default 1800)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "conformance", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    files = select_files(tests_root(), args.files)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    merged = json.loads(json_path.read_text())["files"] if json_path.exists() else {}
    print(f"running {len(files)} coremltools op test file(s), {args.jobs} at a time", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(run_file, f, args.keyword, args.timeout): f for f in files}
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            merged[r["file"]] = r
            c = r["counts"]
            print(f"  {r['file']}: {c['passed']} passed, {c['refused']} refused, {c['wrong']} wrong, "
                  f"{c['crashed']} crashed, {c['skipped']} skipped ({r['seconds']:.0f} s){' ' + r['error'] if r.get('error') else ''}",
                  flush=True)
    command = "make conformance" if not args.files and not args.keyword else "python tests/conformance/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
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
