#!/usr/bin/env bash
# What `make test` runs: every package's tests, then a summary of which
# Docker daemons the local tests ran against (IMGUTIL_DOCKER_HOSTS, else
# DOCKER_HOST or the default socket).
set -uo pipefail
cd "$(dirname "$0")/.."
flags=${TEST_FLAGS:--race -count=1}
# The local suite runs against every daemon in one test binary (about 11
# minutes under the race detector here): past go test's 10-minute default.
flags="$flags -timeout 45m"
log=$(mktemp "${TMPDIR:-/tmp}/local-test-log.XXXXXX")
trap 'rm -f "$log"' EXIT

echo "test: daemons: ${IMGUTIL_DOCKER_HOSTS:-${DOCKER_HOST:-default socket}}"
rc=0
# shellcheck disable=SC2046,SC2086
go test $flags $(go list ./... | grep -v '/local$') || rc=1
# shellcheck disable=SC2086
go test $flags -v ./local/ >"$log" 2>&1 || rc=1
if [ $rc -ne 0 ] && ! grep -q '^ok' "$log"; then
  # What each failing test said (file:line messages), then the end.
  echo "test: local test messages:"
  grep -E '\.go:[0-9]+: |--- FAIL|^panic|^fatal' "$log" | head -n 400
  grep -v '^=== ' "$log" | tail -n 100
fi
# The containerd backend and the command line are modules of their own.
echo "test: containerds: ${IMGUTIL_CONTAINERD_HOSTS:-none}"
for m in containerd cmd/imgutil; do
  # shellcheck disable=SC2086
  (cd "$m" && go test $flags ./...) || rc=1
done
echo "test: local tests per daemon:"
grep -E '^ {4}--- |daemon: |^--- ' "$log" | grep -v '/Suite/' || true
grep -E '^(ok|FAIL)\s' "$log" || true
if ! grep -q '^ok' "$log"; then
  # Last, where a summary's tail shows it: everything each failing local
  # test printed (its own lines, out of the interleaved -v output).
  echo "test: what each failing local test printed:"
  go run ./internal/tools/testfailures <"$log" | tail -n 400
fi
exit $rc
