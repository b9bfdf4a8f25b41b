#!/usr/bin/env bash
# Starts containerd daemons for the tests of the containerd backend, each on
# a private socket, root and state under $IMGUTIL_CACHE (~/.cache/imgutil):
#
#   scripts/containerd.sh [start]  Debian's containerd 1.6 (installed if
#                                  needed) and containerd 2.x (built from the
#                                  Go module proxy once and cached); print
#                                  `export IMGUTIL_CONTAINERD_HOSTS=name=socket,...`
#                                  listing every one that answers, and
#                                  IMGUTIL_MOBY_CONTAINERD=socket=docker-host
#                                  for the containerd of the moby daemon
#                                  scripts/dockerd.sh all started, if any
#   scripts/containerd.sh stop     stop them
#
# Progress goes to stderr; stdout carries only what to export.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

CACHE=${IMGUTIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgutil}
CONTAINERD2_VERSION=${IMGUTIL_CONTAINERD2_VERSION:-v2.4.2}
CONTAINERD2_BIN="$CACHE/containerd2/bin"

log() { echo "containerd.sh: $*" >&2; }

answers() { # ctr socket
  timeout 10 "$1" --address "$2" version >/dev/null 2>&1
}

stop_one() { stop_daemon "$1" containerd.pid; }

# launch NAME BIN-DIR CONTAINERD CTR: start a containerd on private paths
# under $CACHE/NAME (the CRI plugins left out: no network here) and print
# its socket once it answers. BIN-DIR goes first on PATH (its shims).
launch() {
  local name=$1 bindir=$2 bin=$3 ctr=$4 state="$CACHE/$1"
  local sock="$state/containerd.sock"
  if [ -S "$sock" ] && answers "$ctr" "$sock"; then echo "$sock"; return; fi
  stop_one "$state"
  mkdir -p "$state/root" "$state/state"
  cat >"$state/config.toml" <<EOF
version = 2
root = "$state/root"
state = "$state/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
EOF
  log "starting $name on $sock (log: $state/containerd.log)"
  PATH="$bindir:$PATH" nohup "$bin" --config "$state/config.toml" >"$state/containerd.log" 2>&1 </dev/null &
  echo $! >"$state/containerd.pid"
  for _ in $(seq 1 120); do
    if answers "$ctr" "$sock"; then echo "$sock"; return; fi
    sleep 0.5
  done
  log "$name did not answer within 60s; last log lines:"
  tail -n 20 "$state/containerd.log" >&2
  return 1
}

build_containerd2() {
  if [ -x "$CONTAINERD2_BIN/containerd" ] && [ -x "$CONTAINERD2_BIN/containerd-shim-runc-v2" ] && [ -x "$CONTAINERD2_BIN/ctr" ]; then return; fi
  command -v go >/dev/null || { log "no Go toolchain: cannot build containerd $CONTAINERD2_VERSION"; return 1; }
  log "building containerd $CONTAINERD2_VERSION from the Go module proxy (minutes, once; cached in $CONTAINERD2_BIN)"
  local m=github.com/containerd/containerd/v2/cmd
  (cd / && GOFLAGS=-buildvcs=false GOBIN="$CONTAINERD2_BIN" go install \
    "$m/containerd@$CONTAINERD2_VERSION" "$m/containerd-shim-runc-v2@$CONTAINERD2_VERSION" "$m/ctr@$CONTAINERD2_VERSION") >&2
}

start() {
  local hosts=()
  if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null || ! command -v runc >/dev/null; then
    log "installing Debian's containerd"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq containerd runc >&2
  fi
  local d
  if d=$(launch containerd-debian "$(dirname "$(command -v containerd)")" "$(command -v containerd)" "$(command -v ctr)"); then
    hosts+=("debian=$d")
  else
    log "Debian's containerd unavailable: the containerd tests will not run against it"
  fi
  if build_containerd2 && d=$(launch containerd-v2 "$CONTAINERD2_BIN" "$CONTAINERD2_BIN/containerd" "$CONTAINERD2_BIN/ctr"); then
    hosts+=("v2=$d")
  else
    log "containerd $CONTAINERD2_VERSION unavailable: the containerd tests will not run against it"
  fi
  local IFS=,
  echo "export IMGUTIL_CONTAINERD_HOSTS=${hosts[*]}"
  # The containerd of the moby v2 daemon with the containerd image store
  # (scripts/dockerd.sh all), when it runs: images saved into its "moby"
  # namespace are that daemon's.
  local moby="$CACHE/moby-containerd"
  if [ -S "$moby/exec/containerd/containerd.sock" ] && [ -S "$moby/docker.sock" ]; then
    echo "export IMGUTIL_MOBY_CONTAINERD=$moby/exec/containerd/containerd.sock=unix://$moby/docker.sock"
  fi
}

stop() {
  for s in containerd-debian containerd-v2; do stop_one "$CACHE/$s"; done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
