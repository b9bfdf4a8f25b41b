# imgutil: `make demo` runs the main job on an embedded default,
# `make test` runs the tests (against a real Docker daemon when one answers:
# `scripts/dockerd.sh` finds or starts one).
GO ?= go
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || echo $(HOME)/go/bin/golangci-lint)
TEST_FLAGS ?= -race -count=1
BENCH_FLAGS ?= -run '^$$' -bench . -benchtime 3x -count=1

.PHONY: test lint fmt vet bench demo tools

## test: run every test; local ones against each daemon IMGUTIL_DOCKER_HOSTS
## lists (`eval "$$(scripts/dockerd.sh all)"`), else DOCKER_HOST's
test:
	TEST_FLAGS="$(TEST_FLAGS)" scripts/test.sh

## vet: go vet
vet:
	$(GO) vet ./...

## lint: golangci-lint (installed from the module proxy when missing)
lint: tools
	$(GOLANGCI_LINT) run ./...

## fmt: gofmt and goimports through golangci-lint
fmt: tools
	$(GOLANGCI_LINT) fmt ./...

## bench: benchmarks; each prints its ratio to the physical limit of the same run
bench:
	$(GO) test $(BENCH_FLAGS) ./...

## demo: build, rebuild with reuse and export an image in a temp OCI layout
demo:
	$(GO) run ./cmd/imgutil-demo

tools:
	@test -x "$(GOLANGCI_LINT)" || GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
