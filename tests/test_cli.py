"""The command line as a user meets it: instant help, one-line errors, exit codes."""

import subprocess
import sys

import pytest

COMMANDS = ["train", "convert", "inspect", "verify", "evaluate", "predict", "package", "tune", "report"]


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "kerasml", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_does_not_import_tensorflow(command):
    argv = ["kerasml"] + ([command] if command else []) + ["--help"]
    probe = (f"import sys; sys.argv = {argv!r}\n"
             "from kerasml.cli import main\n"
             "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
             "print('HEAVY' if {'tensorflow', 'keras', 'coremltools'} & set(sys.modules) else 'LIGHT')")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("LIGHT")
    assert "Usage" in result.stdout


def test_version():
    from kerasml import __version__
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"kerasml {__version__}"


def test_list_archs():
    result = run("train", "--list-archs")
    assert result.returncode == 0
    assert "tutorial" in result.stdout and "chollet" in result.stdout


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_convert_missing_file(tmp_path):
    assert_one_line_error(run("convert", tmp_path / "nope.keras"), "not found")


def test_convert_unknown_label_preset(trained_digits, tmp_path):
    result = run("convert", trained_digits.model_path, "--labels", "animals", "--out", tmp_path / "x.mlmodel")
    assert_one_line_error(result, "unknown label preset")
    assert not (tmp_path / "x.mlmodel").exists()


def test_convert_label_count_mismatch(trained_digits, tmp_path):
    result = run("convert", trained_digits.model_path, "--labels", "a,b", "--out", tmp_path / "x.mlmodel")
    assert_one_line_error(result, "2 labels given but the model has 10 outputs")
    assert list(tmp_path.iterdir()) == []


def test_convert_existing_output_without_force(trained_digits, tmp_path):
    existing = tmp_path / "x.mlmodel"
    existing.write_text("keep me")
    assert_one_line_error(run("convert", trained_digits.model_path, "--out", existing), "--force")
    assert existing.read_text() == "keep me"


@pytest.mark.slow
def test_train_unknown_dataset(tmp_path):
    assert_one_line_error(run("train", "--dataset", "cifar", "--out", tmp_path / "m.keras"), "unknown dataset")


@pytest.mark.slow
def test_inspect_not_a_model(tmp_path):
    bogus = tmp_path / "bogus.mlmodel"
    bogus.write_bytes(b"\x00\x01 definitely not protobuf" * 10)
    assert_one_line_error(run("inspect", bogus), "not a readable Core ML model")


@pytest.mark.slow
def test_train_convert_inspect_from_the_command_line(tmp_path, small_digits_npz):
    model = tmp_path / "cli.keras"
    trained = run("train", "--data", small_digits_npz, "--arch", "chollet", "--epochs", "1", "--out", model)
    assert trained.returncode == 0, trained.stderr
    assert "next: kerasml convert" in trained.stdout and "--labels digits" in trained.stdout
    converted = run("convert", model, "--labels", "digits")
    assert converted.returncode == 0, converted.stderr
    assert "specification version" in converted.stdout and (tmp_path / "cli.mlmodel").is_file()
    inspected = run("inspect", tmp_path / "cli.mlmodel", "--json")
    assert inspected.returncode == 0 and '"classLabel"' in inspected.stdout
