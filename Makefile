# metal-images: build, test and publish metal-stack OS images.
# Every target is a thin call into the typed zx scripts under scripts/ (run with tsx).
#   make debian            build + export + lint + VM-test the Debian 12 image
#   make test              unit + integration suites (what CI runs)
#   make help              everything else
SHELL := /bin/bash
.DEFAULT_GOAL := help

OSES := $(sort $(patsubst %/image.yaml,%,$(wildcard */image.yaml)))
NODE_STAMP := node_modules/.package-lock.json
CLI := node --import tsx scripts/cli.ts

# Variables given on make's command line reach the CLI as data, never as shell text: each one's
# unexpanded value goes to the CLI's environment as METAL_MAKE_<name> (and not under its own name),
# and the CLI checks it (scripts/lib/config.ts: OS, PREFIX, FORCE and the keys of .env.example).
# No recipe pastes a variable, so each recipe's exit status is the CLI's (make: *** ... Error 3).
# Nothing else is exported: a variable nobody set reaches no environment, and .env applies.
MAKE_VARS := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
$(foreach v,$(MAKE_VARS),$(eval export METAL_MAKE_$(v) := $$(value $(v)))$(eval unexport $(v)))

.PHONY: help setup test test-unit test-integration test-slow all release promote downloads lint export vmtest provision-test bench check ci-matrix $(OSES)

help:
	@echo "Images:   $(foreach o,$(OSES),make $(o);)  make all"
	@echo "          make <os> VARIANT=<variant>  (e.g. make firewall VARIANT=debian, make debian VARIANT=13)"
	@echo "Pieces:   make setup | make export OS=<os> | make lint OS=<os> | make vmtest OS=<os> | make provision-test OS=<os> | make bench OS=<os>"
	@echo "Publish:  make release [DRY_RUN=1] [FORCE=1] | make promote DATE=YYYYMMDD | make downloads [PREFIX=...]"
	@echo "CI:       make check (also lints .github/workflows and .gitlab-ci.yml) | make ci-matrix (the images CI fans out over, JSON)"
	@echo "Tests:    make test (unit + integration, what CI runs) | make test-unit | make test-slow"

# npm ci only when the lock file changed: everything else is installed by `scripts/cli.ts setup`.
# Its output goes to stderr, so that a target printing data (make -s ci-matrix) stays parseable.
$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund >&2
	@touch $@

setup: $(NODE_STAMP)
	@$(CLI) setup

$(OSES): $(NODE_STAMP)
	@$(CLI) setup --quiet
	@$(CLI) build $@

all: $(NODE_STAMP)
	@$(CLI) setup --quiet
	@$(CLI) all

lint vmtest provision-test bench export: $(NODE_STAMP)
	@$(CLI) $@

release: $(NODE_STAMP)
	@$(CLI) release

promote: $(NODE_STAMP)
	@$(CLI) promote

downloads: $(NODE_STAMP)
	@$(CLI) downloads

check: $(NODE_STAMP)
	@$(CLI) check

# The images CI fans out over, one line of JSON (.github/workflows/images.yaml reads it).
ci-matrix: $(NODE_STAMP)
	@$(CLI) ci-matrix

# The suites run through tests/helpers/run-suite.ts: uvu, plus every failure repeated after the
# summary (CI's log may keep only the tail).
test-unit: $(NODE_STAMP)
	npx tsc --noEmit
	node --import tsx tests/helpers/run-suite.ts tests/unit
	python3 -B -m unittest discover -s tests/installer

test-integration: $(NODE_STAMP)
	@$(CLI) setup --quiet
	node --import tsx tests/helpers/run-suite.ts tests/integration

# setup first: the unit suites use host tools it installs (nft for the firewall rulesets)
test: $(NODE_STAMP)
	@$(CLI) setup --quiet
	@$(MAKE) --no-print-directory test-unit test-integration

# Builds and boots every image that can be built here; slower than `make test`.
test-slow: $(NODE_STAMP)
	@$(CLI) setup --quiet
	METAL_SLOW=1 node --import tsx tests/helpers/run-suite.ts tests/integration

# Anything else is a typo or an OS folder that does not exist.
Makefile package-lock.json: ;
# The target name reaches the shell through the environment, never pasted into the line (a
# socket or pipe as stderr cannot be opened by name, so make's $(file) cannot write this).
%: export METAL_UNKNOWN_TARGET = $@
%: export METAL_KNOWN_OSES = $(OSES)
%:
	@printf 'error: unknown OS or target "%s" (images: %s)\n  fix: make help\n' "$$METAL_UNKNOWN_TARGET" "$$METAL_KNOWN_OSES" >&2; exit 2
