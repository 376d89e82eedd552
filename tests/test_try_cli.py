"""`kerasml try` as a user starts it: one `error:` line and exit code 2 before any server starts,
and a server that answers on the address it prints."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

import try_models
from kerasml.cli import app

pytest.importorskip("uvicorn", reason="kerasml try needs uvicorn (pip install fastapi uvicorn)")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("try_cli")
    return {"digits": try_models.digit_model(folder), "regressor": try_models.regressor_model(folder)}


def kerasml_try(*args):
    """In-process, as the command line runs it: every error comes before the server starts."""
    return CliRunner().invoke(app, ["try", *map(str, args), "--no-browser"])


def assert_one_error_line(result, *fragments):
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_a_model_that_is_not_an_image_classifier(models):
    assert_one_error_line(kerasml_try(models["regressor"]), "is not an image classifier")


def test_a_missing_or_damaged_model(tmp_path):
    assert_one_error_line(kerasml_try(tmp_path / "nothing.mlmodel"), "does not exist")
    damaged = tmp_path / "damaged.mlmodel"
    damaged.write_bytes(b"\x08\x04\x12\xff\xff")
    assert_one_error_line(kerasml_try(damaged), "not a readable Core ML model")


def test_a_port_in_use(models):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert_one_error_line(kerasml_try(models["digits"], "--port", port), f"127.0.0.1:{port} is in use",
                              "--port")


def test_bad_port_and_host(models):
    assert_one_error_line(kerasml_try(models["digits"], "--port", 70000), "not a port")
    assert_one_error_line(kerasml_try(models["digits"], "--host", "no-such-host.invalid"), "--host")


def test_serves_the_page_on_the_address_it_prints(models):
    server = subprocess.Popen([sys.executable, "-m", "kerasml", "try", str(models["digits"]), "--port", "0",
                               "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("kerasml try: http://127.0.0.1:"), line + server.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/model", timeout=30) as response:
            assert json.load(response)["name"] == "digits.mlmodel"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b'<canvas id="pad"' in response.read()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0, server.stderr.read()          # Ctrl-C is how a user stops it
    assert server.stdout.read().strip() == "kerasml try: stopped"


def test_help_is_instant_and_light():
    probe = ("import sys; sys.argv = ['kerasml', 'try', '--help']\nfrom kerasml.cli import main\n"
             "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
             "print('HEAVY' if {'tensorflow', 'fastapi', 'uvicorn', 'coremltools'} & set(sys.modules) else 'LIGHT')")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0 and result.stdout.strip().endswith("LIGHT"), result.stderr
    assert "--no-browser" in result.stdout


def test_missing_server_libraries_are_one_line(models, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)          # as if uvicorn were not installed
    assert_one_error_line(kerasml_try(models["digits"]), "needs uvicorn", "pip install fastapi uvicorn")
