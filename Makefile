# kerasml: the two set-up commands are `make demo` and `make test`; both create the venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KERASML := $(VENV)/bin/kerasml
STAMP  := $(VENV)/.installed
MODELS := models
SWIFT  ?= swift

.PHONY: venv demo test test-fast pytest swift-test bench conformance zoo compression load diff-examples docs clean

venv: $(STAMP)

# Re-installs only when pyproject.toml changes (the stamp is newer otherwise), so a second
# `make venv` does nothing. -qq on the editable install: setuptools' "Editable installation" notice
# is for package authors, not for someone running `make demo`; pip's errors still show.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -qq -e ".[test]"
	touch $(STAMP)

# The real MNIST test set, when this checkout sits beside ../shared: only ever evaluated on.
MNIST_TEST := $(wildcard ../shared/data/mnist-test)

# The model the app ships with says who made it on purpose, not the build machine's git user.
DEMO_AUTHOR  := kerasml contributors
DEMO_LICENSE := MIT (model weights); trained on MNIST, CC BY-SA 3.0

demo: venv
	$(KERASML) train --dataset mnist --out $(MODELS)/digits.keras --force $(if $(MNIST_TEST),--test-data $(MNIST_TEST))
	$(KERASML) convert $(MODELS)/digits.keras --labels digits --out $(MODELS)/digits.mlmodel --force \
		--author "$(DEMO_AUTHOR)" --license "$(DEMO_LICENSE)"
	$(KERASML) verify $(MODELS)/digits.mlmodel --keras $(MODELS)/digits.keras $(if $(MNIST_TEST),--data $(MNIST_TEST))
	$(KERASML) inspect $(MODELS)/digits.mlmodel
	$(KERASML) package $(MODELS)/digits.mlmodel
	$(KERASML) convert $(MODELS)/digits.keras --labels digits --format aimodel --out $(MODELS)/digits.aimodel --force \
		--author "$(DEMO_AUTHOR)" --license "$(DEMO_LICENSE)"
	$(KERASML) verify $(MODELS)/digits.aimodel --keras $(MODELS)/digits.keras $(if $(MNIST_TEST),--data $(MNIST_TEST))
	$(KERASML) package $(MODELS)/digits.aimodel

test: venv pytest swift-test

# One test file per worker (--dist loadfile): module fixtures (a trained model, a conversion) are
# built once, and the two workers keep both cores busy while the other waits on I/O or one thread.
TEST_JOBS ?= 2
pytest: venv
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=15

# The quick tier while working (under 2 minutes on 2 cores): everything but the tests marked `slow`,
# those that train or convert a real model (tests/conftest.py marks the users of such fixtures).
test-fast: venv
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile -m "not slow"

# DigitKit (ios_app/DigitKit, the app's local Swift package) has XCTest tests only; without the
# empty Swift Testing pass the run ends on XCTest's summary.
swift-test:
	@if command -v $(SWIFT) >/dev/null 2>&1; then \
		cd ios_app/DigitKit && $(SWIFT) test --disable-swift-testing; \
	else \
		echo "swift not found: skipping 'swift test' in ios_app/DigitKit/ (install the Swift toolchain to run it)"; \
	fi

# Side-by-side figures for the README: writes bench/results.json and bench/results.md (about 25 minutes
# on 2 idle cores). A smoke test: make bench ARGS=--quick (writes bench/out/results.*).
bench: venv
	$(PY) bench/run.py $(ARGS)

# coremltools' own op tests with kerasml's runtime standing in for Core ML (about an hour on 2 cores):
# prints and writes bench/conformance.md and .json. A subset: make conformance ARGS="iOS14/test_activation.py -k relu"
conformance: venv
	PYTHONPATH=$(CURDIR) $(PY) tests/conformance/run.py $(ARGS)

# Every zoo case (bench/zoo_cases.py: single unusual layers and every keras.applications family,
# random weights, nothing downloaded) converted to .mlmodel, .mlpackage and .aimodel and verified (Core ML
# with kerasml's runtime, Core AI with Apple's, and the two runtimes against each other): writes bench/zoo.md
# and bench/zoo.json (docs/conversion.md quotes the table: make docs). Long (tens of minutes); `make test` runs its fast subset.
zoo: venv
	$(PY) bench/zoo.py

# Every compression scheme x format of the digit model (models/digits.keras, else trained on the
# bundled sample) on the real MNIST test digits: size, share of fp32, accuracy, points lost.
# Writes bench/compression.md and .json (about 12 minutes on 2 cores).
compression: venv
	PYTHONPATH=$(CURDIR) $(PY) bench/compression.py

# `kerasml try` under load on loopback (issue 26): one 40 MP photo, 600 drawings from 24 clients with 24
# concurrent 40 MP uploads and a 9 MB trickle, the queue's 503, hostile files and a fuzz of the upload
# route. Starts its own server; writes bench/load.json and bench/load.md (about 3 minutes on 2 cores).
load: venv
	PYTHONPATH=$(CURDIR) $(PY) bench/load.py $(ARGS)

# The worked examples of docs/diff.md (a fault, float16 overflow and its fix, compression sensitivity),
# each a real kerasml run on the default digit model: writes bench/diff/*.md (about 5 minutes on 2 cores).
diff-examples: venv
	PYTHONPATH=$(CURDIR) $(PY) bench/diff_examples.py $(ARGS)

# The blocks of README.md and docs/*.md that quote a command's options or a benchmark's figures,
# regenerated from the CLI and bench/*.md (tests/test_docs.py fails when one is stale).
docs: venv
	$(PY) docs/generate.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info bench/out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
