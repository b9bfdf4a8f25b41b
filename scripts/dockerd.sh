#!/usr/bin/env bash
# Finds or starts a Docker daemon for the tests and prints the DOCKER_HOST to use.
#
#   scripts/dockerd.sh [start]   print DOCKER_HOST of a daemon that answers:
#                                $DOCKER_HOST, the default socket, or one this
#                                script starts (installing Debian's docker.io
#                                if needed) on a private socket and data root
#   scripts/dockerd.sh stop      stop the daemon this script started
#
# Progress goes to stderr; stdout carries only the DOCKER_HOST line.
set -euo pipefail

STATE=${IMGUTIL_DOCKERD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imgutil/dockerd}
SOCK="$STATE/docker.sock"
PIDFILE="$STATE/docker.pid"

log() { echo "dockerd.sh: $*" >&2; }

answers() { # host
  timeout 10 docker -H "$1" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$PIDFILE"
  fi
  # The data root may stay bind-mounted on itself after the daemon exits.
  grep -o " $STATE/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done || true
}

start() {
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
    echo "$DOCKER_HOST"; return
  fi
  if [ -S /var/run/docker.sock ] && answers unix:///var/run/docker.sock; then
    echo unix:///var/run/docker.sock; return
  fi
  if [ -S "$SOCK" ] && answers "unix://$SOCK"; then
    echo "unix://$SOCK"; return
  fi
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    log "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq docker.io >&2
  fi
  stop
  mkdir -p "$STATE/root" "$STATE/exec"
  log "starting dockerd on unix://$SOCK (log: $STATE/dockerd.log)"
  nohup dockerd --data-root "$STATE/root" --exec-root "$STATE/exec" \
    -H "unix://$SOCK" --pidfile "$PIDFILE" \
    --bridge none --iptables=false --ip6tables=false \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers "unix://$SOCK"; then echo "unix://$SOCK"; return; fi
    sleep 0.5
  done
  log "dockerd did not answer within 60s; last log lines:"
  tail -n 20 "$STATE/dockerd.log" >&2
  exit 1
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
