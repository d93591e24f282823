#!/usr/bin/env bash
# A 3-broker Apache Kafka KRaft cluster on loopback, for replication and broker-failure tests.
# Each node is kafka.sh (same jars, JVM flags and readiness probe) with its own node id, ports and
# data dir; all three are combined broker+controller nodes with static voters, so the quorum (and
# every partition's leadership) survives one node down, not two.
#   cluster.sh up [N] | down [N] | kill N | status | wait | bootstrap | reset
# N (1-3) acts on one node; `up N` restarts it (keeping its data) and waits until it is back.
# Environment: KAFKA_CLUSTER_PORTS ("19092 19093 19094"), KAFKA_CLUSTER_CONTROLLER_PORTS (each
#   broker port + 100), KAFKA_HEAP_OPTS (-Xms128m -Xmx256m per broker), KAFKA_HOME (var/kafka),
#   KAFKA_READY_TIMEOUT (90 s); `make cluster-up` etc. call it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kafka=$here/kafka.sh
home=${KAFKA_HOME:-$root/var/kafka}
python=${PYTHON:-$root/.venv/bin/python}
# shellcheck disable=SC2206
ports=(${KAFKA_CLUSTER_PORTS:-19092 19093 19094})
if [[ -n ${KAFKA_CLUSTER_CONTROLLER_PORTS:-} ]]; then
  # shellcheck disable=SC2206
  ctrls=(${KAFKA_CLUSTER_CONTROLLER_PORTS})
else
  ctrls=()
  for port in "${ports[@]}"; do ctrls+=($((port + 100))); done
fi
if ((${#ports[@]} != 3 || ${#ctrls[@]} != 3)); then
  echo "cluster: need 3 broker ports and 3 controller ports" >&2
  exit 2
fi
voters="1@127.0.0.1:${ctrls[0]},2@127.0.0.1:${ctrls[1]},3@127.0.0.1:${ctrls[2]}"
export KAFKA_HOME=$home
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx256m}
# Internal topics survive one broker down and still need two copies of every write.
export KAFKA_INTERNAL_REPLICATION=3 KAFKA_INTERNAL_MIN_ISR=2
export KAFKA_READY_BROKERS=3
# Broker defaults for other topics stay kafka.sh's (replication 1, min ISR 1): billstream sets
# its own on every topic it creates, and the cluster tests check them on the topics themselves.
# A SIGKILLed broker is fenced (its partitions get new leaders, it leaves every ISR) after the
# session timeout: 3 s here instead of Kafka's 9 s, so a failure costs seconds of 503s, not ten.
export KAFKA_EXTRA_CONFIG="broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000"

log() { echo "cluster: $*" >&2; }

# Run kafka.sh as node $1 (1-3) with the remaining arguments.
node() {
  local n=$1
  shift
  KAFKA_NODE_ID=$n KAFKA_PORT=${ports[n - 1]} KAFKA_CONTROLLER_PORT=${ctrls[n - 1]} \
    KAFKA_VOTERS=$voters KAFKA_CLUSTER_ID=$cluster_id "$kafka" "$@"
}

bootstrap() {
  local IFS=,
  echo "${ports[*]/#/127.0.0.1:}"
}

# The id every node is formatted with (set by `up`): the one already on disk, else a new one.
cluster_id=""
choose_cluster_id() {
  local port meta
  for port in "${ports[@]}"; do
    meta=$home/data-$port/meta.properties
    if [[ -f $meta ]]; then
      cluster_id=$(sed -n 's/^cluster.id=//p' "$meta")
      [[ -n $cluster_id ]] && return  # a node formatted before: join its cluster
    fi
  done
  cluster_id=$("$python" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
  # Every node must be formatted with the same id: never leave it to each node to invent one.
  if [[ -z $cluster_id ]]; then
    echo "cluster: could not choose a cluster id ($python failed)" >&2
    exit 1
  fi
}

check_node() {
  [[ ${1:-} =~ ^[123]$ ]] || { echo "cluster: node must be 1, 2 or 3 (got '${1:-}')" >&2; exit 2; }
}

# Wait for all 3 brokers registered, asking the first node that runs.
wait_any() {
  local n
  for n in 1 2 3; do
    if node "$n" status >/dev/null; then
      node "$n" wait
      return
    fi
  done
  log "no node is running"
  return 1
}

up() {
  "$kafka" fetch
  choose_cluster_id
  local started n
  started=$(date +%s%N)
  if [[ -n ${1:-} ]]; then
    check_node "$1"
    node "$1" up  # waits for all 3 registered, through its own port
  else
    # A node cannot finish starting before a majority of voters is up: launch all, then wait.
    for n in 1 2 3; do node "$n" start & done
    wait
    # Each node through its own port: a survivor that lost the quorum still lists the dead
    # brokers, so asking one node alone can pass while another failed to start.
    for n in 1 2 3; do
      if ! node "$n" wait; then
        log "node $n (port ${ports[n - 1]}) did not come up; its log ends:"
        tail -n 40 "$home/logs/server-${ports[n - 1]}.log" >&2
        down
        return 1
      fi
    done
  fi
  log "ready in $((($(date +%s%N) - started) / 1000000)) ms: KAFKA_BOOTSTRAP_SERVERS=$(bootstrap)"
}

down() {
  if [[ -n ${1:-} ]]; then
    check_node "$1"
    node "$1" down
    return 0
  fi
  # Together: the last node alone could not reach a quorum for its controlled shutdown.
  local n
  for n in 1 2 3; do node "$n" down & done
  wait
}

status() {
  local n line rss total=0 rc=0
  for n in 1 2 3; do
    if line=$(node "$n" status); then
      rss=$(sed -n 's/.*rss_kb=\([0-9]*\).*/\1/p' <<<"$line")
      total=$((total + rss))
    else
      rc=1
    fi
    echo "node=$n $line"
  done
  echo "total rss_kb=$total bootstrap=$(bootstrap)"
  return "$rc"
}

case "${1:-}" in
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  kill) check_node "${2:-}"; node "$2" kill ;;
  status) status ;;
  wait) wait_any ;;
  bootstrap) bootstrap ;;
  reset) down; for n in 1 2 3; do node "$n" reset; done ;;
  *) echo "usage: $0 up [N]|down [N]|kill N|status|wait|bootstrap|reset" >&2; exit 2 ;;
esac
