#!/usr/bin/env bash
# Builds and vets every module for each OS and architecture pack ships for
# (linux, darwin, windows on amd64 and arm64): OS-specific code must stay
# in per-OS files that compile everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
for m in . containerd cmd/imgutil; do
  for os in linux darwin windows; do
    for arch in amd64 arm64; do
      if ! (cd "$m" && GOOS=$os GOARCH=$arch go vet ./...); then
        echo "crossvet: $m failed for $os/$arch" >&2
        rc=1
      fi
    done
  done
done
[ $rc -eq 0 ] && echo "crossvet: every module vets for linux, darwin, windows on amd64 and arm64"
exit $rc
