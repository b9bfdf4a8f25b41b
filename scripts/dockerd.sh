#!/usr/bin/env bash
# Finds or starts Docker daemons for the tests.
#
#   scripts/dockerd.sh [start]  print the DOCKER_HOST of a daemon that answers:
#                               $DOCKER_HOST, the default socket, or Debian's
#                               docker.io started here (installed if needed)
#                               on a private socket and data root
#   scripts/dockerd.sh all      also start a current dockerd (moby v2, built
#                               from the Go module proxy once and cached) with
#                               the containerd image store and with the classic
#                               store, and Podman's Docker-compatible service
#                               (Debian's podman, installed if needed);
#                               print `export` lines for DOCKER_HOST and
#                               IMGUTIL_DOCKER_HOSTS (name=host,...), listing
#                               every daemon that answers
#   scripts/dockerd.sh stop     stop every daemon this script started
#
# Progress goes to stderr; stdout carries only what to export.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

CACHE=${IMGUTIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imgutil}
MOBY_VERSION=${IMGUTIL_MOBY_VERSION:-v2.0.0-beta.24}
MOBY_BIN="$CACHE/bin/dockerd"

log() { echo "dockerd.sh: $*" >&2; }

answers() { # host
  timeout 10 docker -H "$1" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

stop_one() { stop_daemon "$1" docker.pid; }

# launch NAME BINARY [daemon.json content]: start a daemon on private paths
# under $CACHE/NAME and print its host once it answers.
launch() {
  local name=$1 bin=$2 config=${3:-'{}'} state="$CACHE/$1"
  local sock="$state/docker.sock"
  if [ -S "$sock" ] && answers "unix://$sock"; then echo "unix://$sock"; return; fi
  stop_one "$state"
  mkdir -p "$state/root" "$state/exec"
  echo "$config" >"$state/daemon.json"
  log "starting $name on unix://$sock (log: $state/dockerd.log)"
  nohup "$bin" --config-file "$state/daemon.json" --data-root "$state/root" --exec-root "$state/exec" \
    -H "unix://$sock" --pidfile "$state/docker.pid" \
    --bridge none --iptables=false --ip6tables=false \
    >"$state/dockerd.log" 2>&1 </dev/null &
  await "$name" "$sock" "$state/dockerd.log"
}

# await NAME SOCKET LOG: print the host once the daemon on SOCKET answers;
# after 60s, show LOG's last lines and fail.
await() {
  for _ in $(seq 1 120); do
    if answers "unix://$2"; then echo "unix://$2"; return; fi
    sleep 0.5
  done
  log "$1 did not answer within 60s; last log lines:"
  tail -n 20 "$3" >&2
  return 1
}

install_debian_docker() {
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    log "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq docker.io >&2
  fi
}

start() {
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return; fi
  if [ -S /var/run/docker.sock ] && answers unix:///var/run/docker.sock; then
    echo unix:///var/run/docker.sock; return
  fi
  install_debian_docker
  launch dockerd "$(command -v dockerd)"
}

# launch_podman: start Podman's Docker-compatible service on private paths
# under $CACHE/podman and print its host once it answers (Debian's podman,
# installed if needed).
launch_podman() {
  local state="$CACHE/podman"
  local sock="$state/podman.sock"
  if [ -S "$sock" ] && answers "unix://$sock"; then echo "unix://$sock"; return; fi
  if ! command -v podman >/dev/null; then
    log "installing Debian's podman"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq podman >&2
  fi
  stop_one "$state"
  # The runroot holds only the state of a running service: a killed one's
  # is stale.
  rm -rf "$state/run"
  mkdir -p "$state/root" "$state/run"
  rm -f "$sock"
  log "starting podman on unix://$sock (log: $state/podman.log)"
  nohup podman --root "$state/root" --runroot "$state/run" --storage-driver overlay \
    system service --time=0 "unix://$sock" >"$state/podman.log" 2>&1 </dev/null &
  echo $! >"$state/docker.pid"
  await podman "$sock" "$state/podman.log"
}

build_moby() {
  [ -x "$MOBY_BIN" ] && return 0
  command -v go >/dev/null || { log "no Go toolchain: cannot build moby $MOBY_VERSION"; return 1; }
  log "building moby dockerd $MOBY_VERSION from the Go module proxy (minutes, once; cached in $MOBY_BIN)"
  mkdir -p "$CACHE/bin"
  (cd / && GOFLAGS=-buildvcs=false GOBIN="$CACHE/bin" go install "github.com/moby/moby/v2/cmd/dockerd@$MOBY_VERSION") >&2
}

all() {
  local hosts=() primary
  primary=$(start)
  hosts+=("debian=$primary")
  if build_moby; then
    # Debian's runc 1.1 does not know the time namespace moby v2 asks for.
    local h
    if h=$(launch moby-containerd "$MOBY_BIN" '{"features":{"time-namespaces":false}}'); then
      hosts+=("moby-containerd=$h")
    fi
    if h=$(launch moby-classic "$MOBY_BIN" '{"features":{"time-namespaces":false,"containerd-snapshotter":false}}'); then
      hosts+=("moby-classic=$h")
    fi
  else
    log "moby dockerd unavailable: only Debian's daemon will run the tests"
  fi
  if h=$(launch_podman); then
    hosts+=("podman=$h")
  else
    log "podman unavailable: the tests will not run against it"
  fi
  local IFS=,
  echo "export DOCKER_HOST=$primary"
  echo "export IMGUTIL_DOCKER_HOSTS=${hosts[*]}"
}

stop() {
  for s in dockerd moby-containerd moby-classic podman; do stop_one "$CACHE/$s"; done
}

case "${1:-start}" in
  start) start ;;
  all) all ;;
  stop) stop ;;
  *) echo "usage: $0 [start|all|stop]" >&2; exit 2 ;;
esac
