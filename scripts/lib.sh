# Shared by the scripts that start daemons for the tests (sourced).

# stop_daemon STATE-DIR PIDFILE-NAME: stop the daemon whose pid is in
# STATE-DIR/PIDFILE-NAME, and undo mounts it left under STATE-DIR (a data
# root may stay bind-mounted on itself after the daemon exits).
stop_daemon() {
  local state=$1 pidfile="$1/$2"
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    rm -f "$pidfile"
  fi
  grep -o " $state/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m" 2>/dev/null || true; done || true
}
