#!/usr/bin/env bash
# A single-node Apache Kafka 4.x (KRaft, broker+controller) for development and tests, or one
# node of cluster.sh's 3-broker cluster.
# Jars come from Maven Central via pom.xml beside this file and are cached under var/kafka/libs.
#   kafka.sh fetch | up | start | down | kill | status | wait | reset
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (KAFKA_PORT+1), KAFKA_HOME (var/kafka),
#              KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), KAFKA_READY_TIMEOUT (90 s), PYTHON (for the readiness probe).
# Secured brokers (tests/support/secure_broker.py): KAFKA_EXTRA_CONFIG (lines appended to the
#   broker's properties; a repeated key wins), KAFKA_FORMAT_ARGS (extra StorageTool format arguments,
#   e.g. --add-scram); the readiness probe connects with billstream's KAFKA_SECURITY_* settings.
# One node of a cluster (cluster.sh sets these): KAFKA_NODE_ID (1), KAFKA_VOTERS (this node alone),
#   KAFKA_CLUSTER_ID (random), KAFKA_INTERNAL_REPLICATION / KAFKA_INTERNAL_MIN_ISR (1 / 1, for the
#   offsets and transaction topics), KAFKA_READY_BROKERS (1: brokers `wait` expects registered),
#   (KAFKA_EXTRA_CONFIG above).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${KAFKA_PORT:-9092}
ctrl_port=${KAFKA_CONTROLLER_PORT:-$((port + 1))}
home=${KAFKA_HOME:-$root/var/kafka}
libs=$home/libs
data=$home/data-$port
logs=$home/logs
pidfile=$home/kafka-$port.pid
props=$home/server-$port.properties
python=${PYTHON:-$root/.venv/bin/python}
node_id=${KAFKA_NODE_ID:-1}
voters=${KAFKA_VOTERS:-$node_id@127.0.0.1:$ctrl_port}
internal_rf=${KAFKA_INTERNAL_REPLICATION:-1}
internal_isr=${KAFKA_INTERNAL_MIN_ISR:-1}

log() { echo "kafka: $*" >&2; }

running_pid() {
  [[ -f $pidfile ]] || return 1
  local pid
  pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null && grep -q "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

fetch() {
  if [[ -f $libs/.complete ]] && cmp -s "$here/pom.xml" "$libs/.complete"; then
    return 0
  fi
  log "fetching broker jars from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs"
  cp "$here/pom.xml" "$libs/.complete"
}

write_config() {
  mkdir -p "$data" "$logs"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=$internal_rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$internal_rf
transaction.state.log.min.isr=$internal_isr
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$internal_rf
share.coordinator.state.topic.min.isr=$internal_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
log.retention.hours=168
log.cleaner.backoff.ms=1000
# Room for webhook bodies up to STRIPE_WEBHOOK_MAX_BODY (1 MiB) with their key and headers;
# billstream's own topics also set max.message.bytes for it (billstream/topics.py).
message.max.bytes=2097152
replica.fetch.max.bytes=2097152
${KAFKA_EXTRA_CONFIG:-}
PROPS
  cat >"$home/log4j2.properties" <<'LOG'
status = warn
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = STDERR
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
LOG
}

java_args() {
  # shellcheck disable=SC2206
  local heap=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m})
  jargs=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$home/log4j2.properties" -cp "$libs/*" "$@")
}

java_cmd() {
  java_args "$@"
  "${jargs[@]}"
}

wait_ready() {
  local timeout=${KAFKA_READY_TIMEOUT:-90}
  "$python" - "$port" "$timeout" "${KAFKA_READY_BROKERS:-1}" <<'PY'
import asyncio, logging, sys, time
from aiokafka.admin import AIOKafkaAdminClient
from billstream.kafka_security import aiokafka_options
from billstream.settings import Settings

security = aiokafka_options(Settings())  # KAFKA_SECURITY_PROTOCOL etc., as billstream connects
security.pop("bootstrap_servers")

logging.disable(logging.CRITICAL)  # connection refusals are expected while the broker starts

async def probe(port: int, timeout: float, brokers: int) -> None:
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000, **security
        )
        try:
            await admin.start()
            registered = len((await admin.describe_cluster())["brokers"])
            if registered >= brokers:
                return
            exc: object = f"{registered} of {brokers} brokers registered"
        except Exception as error:  # broker still starting
            exc = repr(error)
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            sys.exit(f"kafka: broker on port {port} not ready after {timeout}s: {exc}")
        await asyncio.sleep(0.5)

asyncio.run(probe(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
PY
}

# Launch the broker in the background (formatting its data dir first), without waiting for it.
start() {
  if pid=$(running_pid); then
    log "already running on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  fetch
  write_config
  if [[ ! -f $data/meta.properties ]]; then
    local cluster_id=${KAFKA_CLUSTER_ID:-}
    [[ -n $cluster_id ]] || cluster_id=$(java_cmd kafka.tools.StorageTool random-uuid)
    local format_args
    read -ra format_args <<<"${KAFKA_FORMAT_ARGS:-}"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted \
      "${format_args[@]}" >/dev/null
  fi
  # setsid: the broker gets its own session, so `down` can stop its whole process group.
  java_args kafka.Kafka "$props"
  setsid "${jargs[@]}" >"$logs/server-$port.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

up() {
  local started
  started=$(date +%s%N)
  start
  if ! wait_ready; then
    tail -n 40 "$logs/server-$port.log" >&2
    down
    return 1
  fi
  log "ready on 127.0.0.1:$port in $((($(date +%s%N) - started) / 1000000)) ms (pid $(<"$pidfile"), log $logs/server-$port.log)"
}

down() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    log "not running on port $port"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop in 30 s; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped (port $port)"
}

# SIGKILL, as a crash would (fault drills); the data stays for the next `up`.
kill_broker() {
  local pid
  if pid=$(running_pid); then
    kill -KILL "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    log "killed pid $pid (port $port)"
  fi
  rm -f "$pidfile"
}

status() {
  if pid=$(running_pid); then
    echo "running pid=$pid port=$port rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
  else
    echo "stopped port=$port"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  start) start ;;
  down) down ;;
  kill) kill_broker ;;
  status) status ;;
  wait) wait_ready ;;
  reset) down; rm -rf "$data" ;;
  *) echo "usage: $0 fetch|up|start|down|kill|status|wait|reset" >&2; exit 2 ;;
esac
