# Two commands do all set-up: `make dev` runs bookchat, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast lint lock chromium bench-answer-cache bench-answers bench-burst bench-conversation bench-guardrail bench-insights bench-labels bench-ratelimit bench-recovery bench-rerankers bench-retrieval bench-spike bench-spike-zipf bench-streams bench-first-word clean

# Installs the exact versions in requirements.lock (every extra: worker, postgres, dev), then
# bookchat itself (editable).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "bookchat needs Python 3.11+")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolves requirements.lock from pyproject.toml (run after changing a dependency); the lock
# holds the base and the extras worker, postgres and dev (not ranking-bench).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra worker --extra postgres --extra dev \
	  --python-version 3.11 --upgrade \
	  --quiet -o requirements.lock

dev: $(STAMP)
	$(BIN)/bookchat dev

# The browser tests drive Debian's Chromium (never a downloaded browser); installed here, once.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium \
	  || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium; }

chromium: $(CHROMIUM)

# Every test, on TEST_WORKERS processes (pytest-xdist; a test file stays on one process, so its
# module fixtures are shared). TEST_WORKERS=0 runs them in this process, one after another.
TEST_WORKERS ?= 2
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The quick lane: no browser, no real-process fault suites, no site builds.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy cli common web workers bench tests
	@# The images cannot run here: compose's own `config` validates the file (a placeholder secret).
	JWT_SECRET_KEY=placeholder-of-32-characters-for-lint \
	  $$($(BIN)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")') \
	  -f docker-compose.yml config --quiet

bench-answer-cache: $(STAMP)
	$(BIN)/python -m bench.answer_cache $(ARGS)

bench-answers: $(STAMP)
	$(BIN)/python -m bench.answer_quality $(ARGS)

bench-burst: $(STAMP)
	$(BIN)/python -m bench.burst $(ARGS)

bench-ratelimit: $(STAMP)
	$(BIN)/python -m bench.ratelimit $(ARGS)

bench-recovery: $(STAMP)
	$(BIN)/python -m bench.recovery $(ARGS)

bench-spike: $(STAMP)
	$(BIN)/python -m bench.spike $(ARGS)

bench-spike-zipf: $(STAMP)
	$(BIN)/python -m bench.spike_zipf $(ARGS)

bench-streams: $(STAMP)
	$(BIN)/python -m bench.streams $(ARGS)

bench-first-word: $(STAMP)
	$(BIN)/python -m bench.first_word $(ARGS)

bench-retrieval: $(STAMP)
	$(BIN)/python -m bench.retrieval $(ARGS)

bench-conversation: $(STAMP)
	$(BIN)/python -m bench.conversation_retrieval $(ARGS)

# The candidate models' wheels are only needed by this benchmark (extra "ranking-bench").
bench-rerankers: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[ranking-bench]'
	$(BIN)/python -m bench.rerankers $(ARGS)

bench-guardrail: $(STAMP)
	$(BIN)/python -m bench.guardrail $(ARGS)

bench-insights: $(STAMP)
	$(BIN)/python -m bench.insights $(ARGS)

bench-labels: $(STAMP)
	$(BIN)/python -m bench.answer_labels --record bench/answer_label_coverages.json $(ARGS)

clean:
	rm -rf $(VENV) var
