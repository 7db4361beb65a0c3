# shipbot — run `make help` for the targets.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin
# Tests share one machine with a control plane per test binary; 2 packages at a
# time keeps a 2-core machine responsive.
TEST_FLAGS ?= -count=1 -timeout 18m -p 2
DEMO_FLAGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/shipbot
	$(GO) build -o $(BIN)/shipbot ./cmd/shipbot

.PHONY: cluster-bins
cluster-bins: ## Build and cache etcd, kube-apiserver, controller-manager, scheduler and kwok for the tests
	$(GO) run ./test/cluster/cmd/clusterbins

.PHONY: test-deps
test-deps: ## Install the Debian packages the tests need (prometheus, chromium), or print the command
	@bash test/deps.sh

.PHONY: test
test: test-deps cluster-bins ## Run every test, against a real local control plane
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the benchmarks recorded in docs/BENCHMARKS.md
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./test/bench/...
	$(GO) test -run '^$$' -bench Decode -benchmem -count 3 ./bot/gitlabevent/

.PHONY: demo
demo: build cluster-bins ## shipbot on a local control plane: a dev deploy, an MR preview, a canary moved by keys (DEMO_FLAGS=-once: unattended)
	$(GO) run ./test/demo -shipbot $(BIN)/shipbot $(DEMO_FLAGS)

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: ## Fuzz each parser of outside input for FUZZTIME (60s) each
	@set -e; for t in \
		./bot/gitlabevent:FuzzDecode \
		./bot/gitlabevent:FuzzDecodeAgreesWithTheClient \
		./bot/intake:FuzzNamedAgreesWithDecode \
		./bot/command:FuzzParse \
		./bot/chat/slack:FuzzParseAction \
		./bot/chat/slack:FuzzParseInteraction \
		./bot/chat/slack:FuzzSlash \
		./bot/chat/dingtalk:FuzzParseToken \
		./bot/api:FuzzParseListQuery \
		./bot/api:FuzzControlBody \
		./bot/api:FuzzParseRecordQuery \
		./bot/gitlab:FuzzParseAccessLevel \
		./bot/signin:FuzzSessionCookie \
		./bot/signin:FuzzLocalPath \
		./deployer/config:FuzzParse \
		./deployer/config:FuzzParseRepo \
		./templates:FuzzRender; do \
		pkg=$${t%%:*}; fn=$${t#*:}; \
		echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

.PHONY: clean
clean: ## Remove build output (the cluster binary cache stays)
	rm -rf $(BIN)
