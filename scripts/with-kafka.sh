#!/usr/bin/env bash
# Run a command with the dev/test broker up: start it if it is not running, and stop it again
# afterwards only if this script started it (so a broker you started by hand stays up).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kafka="$here/kafka/kafka.sh"

export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}
started=0
if ! "$kafka" status >/dev/null 2>&1; then
  "$kafka" up || exit 1
  started=1
fi
cleanup() {
  if [[ $started == 1 ]]; then "$kafka" down; fi
}
trap cleanup EXIT
# Ctrl-C reaches the command too (same process group); bash runs this trap only after the
# command has finished its own shutdown, so the broker outlives its clients.
trap ':' INT TERM

"$@"
rc=$?
exit "$rc"
