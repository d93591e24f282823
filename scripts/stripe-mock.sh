#!/usr/bin/env bash
# stripe-mock (Stripe's official mock API server) for tests of the Stripe API tools.
# Built from the Go module proxy with `go install` at a pinned version into var/go/bin (cached).
#   stripe-mock.sh install | path | up <port> | down [<port>] | status [<port>]
# Both listeners are bound to 127.0.0.1: stripe-mock otherwise opens HTTPS on :12112 on every
# interface even when -http-addr is given, so HTTPS gets 127.0.0.1:0 (an ephemeral port).
# Environment: STRIPE_MOCK_VERSION (pinned below), STRIPE_MOCK_GOBIN (var/go/bin),
#              STRIPE_MOCK_READY_TIMEOUT (30 s).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
version=${STRIPE_MOCK_VERSION:-v0.203.0}
gobin=${STRIPE_MOCK_GOBIN:-$root/var/go/bin}
binary=$gobin/stripe-mock
rundir=$root/var/stripe-mock
ready_timeout=${STRIPE_MOCK_READY_TIMEOUT:-30}

log() { echo "stripe-mock: $*" >&2; }

stamp=$gobin/.stripe-mock-version

install() {
  # A `go install` build reports "master" to -version, so a stamp file records what we built.
  if [[ -x $binary && -f $stamp && $(<"$stamp") == "$version" ]]; then
    return 0
  fi
  local go=go
  command -v go >/dev/null || go=/usr/local/go/bin/go
  [[ -x $(command -v "$go") ]] || { log "needs Go (go install) to build $version"; exit 1; }
  log "installing github.com/stripe/stripe-mock@$version into $gobin"
  mkdir -p "$gobin"
  GOBIN=$gobin GOFLAGS=-buildvcs=false "$go" install "github.com/stripe/stripe-mock@$version"
  echo "$version" >"$stamp"
}

pidfile() { echo "$rundir/stripe-mock-$1.pid"; }

running_pid() {
  local file pid
  file=$(pidfile "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  if kill -0 "$pid" 2>/dev/null && grep -q "stripe-mock" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

answers() {
  # Any HTTP answer means it listens; stripe-mock wants a key, so send a dummy one.
  curl -s -o /dev/null -m 2 -H "Authorization: Bearer sk_test_123" \
    "http://127.0.0.1:$1/v1/customers/cus_probe"
}

up() {
  local port=${1:?usage: stripe-mock.sh up <port>}
  install
  if running_pid "$port" >/dev/null; then
    log "already running on 127.0.0.1:$port"
    return 0
  fi
  mkdir -p "$rundir"
  "$binary" -http-addr "127.0.0.1:$port" -https-addr "127.0.0.1:0" \
    >"$rundir/stripe-mock-$port.log" 2>&1 &
  echo $! >"$(pidfile "$port")"
  local deadline=$((SECONDS + ready_timeout))
  until answers "$port"; do
    if ! running_pid "$port" >/dev/null; then
      log "exited; see $rundir/stripe-mock-$port.log"
      tail -n 5 "$rundir/stripe-mock-$port.log" >&2 || true
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "not answering on 127.0.0.1:$port after ${ready_timeout}s"
      exit 1
    fi
    sleep 0.2
  done
  log "listening on http://127.0.0.1:$port"
}

down_one() {
  local pid
  if pid=$(running_pid "$1"); then
    kill "$pid"
    log "stopped 127.0.0.1:$1 (pid $pid)"
  fi
  rm -f "$(pidfile "$1")" "$rundir/stripe-mock-$1.log"
}

down() {
  if [[ $# -gt 0 ]]; then
    down_one "$1"
    return 0
  fi
  local file
  for file in "$rundir"/stripe-mock-*.pid; do
    [[ -e $file ]] || continue
    file=${file##*/stripe-mock-}
    down_one "${file%.pid}"
  done
}

status() {
  local port=${1:-12111} pid
  if pid=$(running_pid "$port"); then
    echo "stripe-mock: running on 127.0.0.1:$port (pid $pid)"
  else
    echo "stripe-mock: not running on 127.0.0.1:$port"
    return 1
  fi
}

case ${1:-} in
  install) install ;;
  path) install >&2 && echo "$binary" ;;
  up) shift && up "$@" ;;
  down) shift && down "$@" ;;
  status) shift && status "$@" ;;
  *)
    echo "usage: $0 install | path | up <port> | down [<port>] | status [<port>]" >&2
    exit 2
    ;;
esac
