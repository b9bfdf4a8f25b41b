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
#                               Also Debian's dockerd listening on TCP with
#                               TLS (certificates made here, reached through
#                               a Docker context in a private DOCKER_CONFIG)
#                               and Debian's dockerd reached over ssh:// (an
#                               sshd on 127.0.0.1 runs `docker system
#                               dial-stdio`; an `ssh` that knows its key and
#                               host key goes first in PATH)
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

# launch NAME BINARY [daemon.json content [dockerd flags...]]: start a daemon
# on private paths under $CACHE/NAME and print its host once it answers.
launch() {
  local name=$1 bin=$2 config=${3:-'{}'} state="$CACHE/$1"
  shift 3 2>/dev/null || shift $#
  local sock="$state/docker.sock"
  if [ -S "$sock" ] && answers "unix://$sock"; then echo "unix://$sock"; return; fi
  stop_one "$state"
  mkdir -p "$state/root" "$state/exec"
  echo "$config" >"$state/daemon.json"
  log "starting $name on unix://$sock (log: $state/dockerd.log)"
  nohup "$bin" --config-file "$state/daemon.json" --data-root "$state/root" --exec-root "$state/exec" \
    -H "unix://$sock" --pidfile "$state/docker.pid" \
    --bridge none --iptables=false --ip6tables=false "$@" \
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
  if [ -z "${IMGUTIL_NO_REMOTE_DAEMONS:-}" ]; then
    install_debian_docker
    if h=$(launch_tls); then
      hosts+=("debian-tls=$h")
      # The TLS daemon's context lives in a configuration of its own.
      echo "export DOCKER_CONFIG=$DOCKER_CONFIG_DIR"
    else
      log "no daemon over TLS: the tests will not reach one"
    fi
    if h=$(launch_ssh "$primary"); then
      hosts+=("debian-ssh=$h")
      echo "export PATH=$CACHE/sshd/bin:\$PATH"
    else
      log "no daemon over ssh: the tests will not reach one"
    fi
  fi
  local IFS=,
  echo "export DOCKER_HOST=$primary"
  echo "export IMGUTIL_DOCKER_HOSTS=${hosts[*]}"
}

TLS_PORT=${IMGUTIL_TLS_PORT:-23760}
SSH_PORT=${IMGUTIL_SSH_PORT:-23722}
TLS_CONTEXT=imgutil-tls
SSH_ALIAS=imgutil-ssh
DOCKER_CONFIG_DIR="$CACHE/docker-config"

# make_certs DIR: a CA, a server certificate for 127.0.0.1 and a client
# certificate, as dockerd's --tlsverify wants them (made once).
make_certs() {
  local d=$1
  [ -s "$d/key.pem" ] && [ -s "$d/server-key.pem" ] && return 0
  command -v openssl >/dev/null || { log "no openssl: cannot make TLS certificates"; return 1; }
  mkdir -p "$d"
  (
    cd "$d"
    openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem
    openssl req -x509 -new -key ca-key.pem -subj /CN=imgutil-test-ca -days 3650 -out ca.pem
    for who in server client; do
      openssl ecparam -name prime256v1 -genkey -noout -out "$who-key.pem"
      openssl req -new -key "$who-key.pem" -subj "/CN=imgutil-$who" -out "$who.csr"
    done
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile server.ext -out server-cert.pem
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile client.ext -out cert.pem
    mv client-key.pem key.pem
    rm -f ./*.csr ./*.ext
  ) >/dev/null 2>&1
}

# launch_tls: Debian's dockerd with a TCP listener that wants TLS and a
# client certificate, and a Docker context (made by the Docker CLI) to
# reach it; print the context's name once the daemon answers through it.
launch_tls() {
  local certs="$CACHE/tls"
  make_certs "$certs" || return 1
  launch dockerd-tls "$(command -v dockerd)" '{}' -H "tcp://127.0.0.1:$TLS_PORT" \
    --tlsverify --tlscacert "$certs/ca.pem" --tlscert "$certs/server-cert.pem" --tlskey "$certs/server-key.pem" >/dev/null || return 1
  mkdir -p "$DOCKER_CONFIG_DIR"
  DOCKER_CONFIG="$DOCKER_CONFIG_DIR" docker context rm -f "$TLS_CONTEXT" >/dev/null 2>&1 || true
  DOCKER_CONFIG="$DOCKER_CONFIG_DIR" docker context create "$TLS_CONTEXT" \
    --docker "host=tcp://127.0.0.1:$TLS_PORT,ca=$certs/ca.pem,cert=$certs/cert.pem,key=$certs/key.pem" >/dev/null || return 1
  if ! DOCKER_CONFIG="$DOCKER_CONFIG_DIR" timeout 10 docker --context "$TLS_CONTEXT" version >/dev/null 2>&1; then
    log "the TLS daemon does not answer on tcp://127.0.0.1:$TLS_PORT"
    return 1
  fi
  echo "$TLS_CONTEXT"
}

# launch_ssh HOST: an sshd on 127.0.0.1 whose sessions reach the daemon at
# HOST (`docker system dial-stdio` there, as the Docker CLI runs it), and an
# ssh client wrapper (to put first in PATH) that knows the key and host key;
# print the ssh:// host once the daemon answers through it.
launch_ssh() {
  local target=$1 d="$CACHE/sshd"
  if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    log "installing Debian's openssh-server and openssh-client"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq openssh-server openssh-client >&2 || return 1
  fi
  mkdir -p "$d/bin" /run/sshd
  [ -s "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_ed25519" >/dev/null
  [ -s "$d/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/client_ed25519" >/dev/null
  cp "$d/client_ed25519.pub" "$d/authorized_keys"
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
  local running=""
  [ -f "$d/sshd_config" ] && cp "$d/sshd_config" "$d/sshd_config.running"
  cat >"$d/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
# Many builds at once each open connections (the stress test: 8 processes
# and a cleanup loop): sshd's default drops unauthenticated ones past 10.
MaxStartups 200
MaxSessions 200
# SHLVL=1: bash, the login shell that runs each session's command, then
# skips root's ~/.bashrc (which may start slow tools: pyenv here).
SetEnv DOCKER_HOST=$target SHLVL=1
CONF
  cat >"$d/ssh_config" <<CONF
Host $SSH_ALIAS
  HostName 127.0.0.1
  Port $SSH_PORT
  User $(id -un)
  IdentityFile $d/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
# Every other host as the user's own configuration says.
Include ~/.ssh/config
CONF
  printf '#!/bin/sh\n# ssh with the test sshd'"'"'s key and host key (scripts/dockerd.sh)\nexec %s -F %s "$@"\n' \
    "$(command -v ssh)" "$d/ssh_config" >"$d/bin/ssh"
  chmod +x "$d/bin/ssh"
  # A running sshd of the same configuration is kept (tests may be using
  # it); another is restarted.
  if [ -f "$d/sshd.pid" ] && kill -0 "$(cat "$d/sshd.pid")" 2>/dev/null &&
    cmp -s "$d/sshd_config" "$d/sshd_config.running"; then
    running=1
  fi
  rm -f "$d/sshd_config.running"
  if [ -z "$running" ]; then
    stop_daemon "$d" sshd.pid
    /usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || { log "sshd did not start; see $d/sshd.log"; return 1; }
  fi
  for _ in $(seq 1 40); do
    if PATH="$d/bin:$PATH" timeout 10 docker -H "ssh://$SSH_ALIAS" version >/dev/null 2>&1; then
      echo "ssh://$SSH_ALIAS"
      return 0
    fi
    sleep 0.25
  done
  log "the daemon does not answer over ssh://$SSH_ALIAS; last sshd log lines:"
  tail -n 20 "$d/sshd.log" >&2
  return 1
}

stop() {
  for s in dockerd moby-containerd moby-classic podman dockerd-tls; do stop_one "$CACHE/$s"; done
  stop_daemon "$CACHE/sshd" sshd.pid
}

case "${1:-start}" in
  start) start ;;
  all) all ;;
  stop) stop ;;
  *) echo "usage: $0 [start|all|stop]" >&2; exit 2 ;;
esac
