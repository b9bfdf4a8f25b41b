# imgutil: `make demo` runs the main job on an embedded default,
# `make test` runs the tests (against a real Docker daemon when one answers:
# `scripts/dockerd.sh` finds or starts one).
GO ?= go
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || echo $(HOME)/go/bin/golangci-lint)
TEST_FLAGS ?= -race -count=1
BENCH_FLAGS ?= -run '^$$' -bench . -benchtime 9x -count=1 -timeout 60m

.PHONY: test lint fmt vet crossvet bench demo fuzz tools

FUZZTIME ?= 30s

## test: run every test; local ones against each daemon IMGUTIL_DOCKER_HOSTS
## lists (`eval "$$(scripts/dockerd.sh all)"`), else DOCKER_HOST's
test:
	TEST_FLAGS="$(TEST_FLAGS)" scripts/test.sh

## vet: go vet
vet:
	$(GO) vet ./...

## crossvet: go vet every module for linux, darwin and windows on amd64
## and arm64
crossvet:
	scripts/crossvet.sh

## lint: golangci-lint (installed from the module proxy when missing)
lint: tools
	$(GOLANGCI_LINT) run ./...
	cd containerd && $(GOLANGCI_LINT) run ./...
	cd cmd/imgutil && $(GOLANGCI_LINT) run ./...

## fmt: gofmt and goimports through golangci-lint
fmt: tools
	$(GOLANGCI_LINT) fmt ./...

## bench: benchmarks against every daemon scripts/dockerd.sh all and
## scripts/containerd.sh start; each prints its ratio to the physical limit
## measured in the same run
bench:
	@eval "$$(scripts/dockerd.sh all)" && $(GO) test $(BENCH_FLAGS) ./... | grep -E '^(BENCH|Benchmark|ok|FAIL|---)'
	@eval "$$(scripts/dockerd.sh all)" && eval "$$(scripts/containerd.sh)" && \
		cd containerd && $(GO) test $(BENCH_FLAGS) ./... | grep -E '^(BENCH|Benchmark|ok|FAIL|---)'

## fuzz: fuzz the tar checks for FUZZTIME each (corpus in internal/layer/testdata/fuzz)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzCheckHeader$$' -fuzztime $(FUZZTIME) ./internal/layer/
	$(GO) test -run '^$$' -fuzz '^FuzzScan$$' -fuzztime $(FUZZTIME) ./internal/layer/

## demo: build, rebuild with reuse and export an image in a temp OCI layout
demo:
	$(GO) run ./cmd/imgutil-demo

tools:
	@test -x "$(GOLANGCI_LINT)" || GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
