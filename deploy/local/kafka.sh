#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) from Maven Central jars, for local runs and tests.
#   kafka.sh fetch                 resolve the pinned broker jars into the cache (once)
#   kafka.sh start DATA_DIR PORT   format storage if new, start, wait until it answers
#   kafka.sh stop DATA_DIR         stop what start started (SIGTERM, then SIGKILL)
set -euo pipefail

KAFKA_VERSION="${LEXCARE_KAFKA_VERSION:-4.1.1}"
CACHE="${LEXCARE_CACHE:-$HOME/.cache/lexcare}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { echo "[kafka] $*" >&2; }

fetch() {
  [ -f "$LIBS/.complete" ] && return 0
  command -v mvn >/dev/null || { log "mvn is required to fetch Kafka"; exit 1; }
  command -v java >/dev/null || { log "java (17+) is required to run Kafka"; exit 1; }
  log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central (once)"
  local work; work="$(mktemp -d)"
  sed "s/@KAFKA_VERSION@/$KAFKA_VERSION/" "$HERE/kafka-pom.xml" > "$work/pom.xml"
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  (cd "$work" && mvn -q -B dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS")
  rm -rf "$work"
  touch "$LIBS/.complete"
}

run_java() {
  java -cp "$LIBS/*" "$@"
}

write_config() {
  local dir=$1 port=$2 ctl=$3
  cat > "$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=${LEXCARE_PARTITIONS:-3}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=${LEXCARE_OFFSETS_PARTITIONS:-10}
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
# Every topic keeps its history locally; ensure_topics also sets retention.ms=-1 and
# retention.bytes=-1 on the business event topics it creates (replay needs them everywhere).
log.retention.hours=-1
offsets.retention.minutes=525600
log.segment.bytes=67108864
message.max.bytes=2097152
log.cleaner.min.compaction.lag.ms=0
# Every partition holds open files and the fd limit here is 20000: tests delete their topics,
# and the broker removes a deleted partition's files after 1 s instead of 60 s.
file.delete.delay.ms=1000
EOF
  cat > "$dir/log4j2.yaml" <<EOF
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: ${LEXCARE_KAFKA_LOG_LEVEL:-WARN}
      AppenderRef:
        - ref: STDOUT
EOF
}

start() {
  local dir=$1 port=${2:-9092}
  local ctl=$((port + 1))
  fetch
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
    log "already running (pid $(cat "$dir/kafka.pid"))"
    return 0
  fi
  if python3 "$HERE/wait_port.py" 127.0.0.1 "$port"; then
    log "port $port is already in use by another process"; exit 1
  fi
  write_config "$dir" "$port" "$ctl"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # What StorageTool random-uuid prints, never starting with `-`; `=` keeps it a value anyway.
    local cluster; cluster="$(python3 "$HERE/cluster_id.py")"
    run_java -Dlog4j2.configurationFile="$dir/log4j2.yaml" kafka.tools.StorageTool format \
      --cluster-id="$cluster" -c "$dir/server.properties" >/dev/null
  fi
  nohup java -Xms${LEXCARE_KAFKA_HEAP:-768M} -Xmx${LEXCARE_KAFKA_HEAP:-768M} \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 \
      -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.yaml" \
      -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! > "$dir/kafka.pid"
  local deadline=$((SECONDS + ${LEXCARE_KAFKA_START_TIMEOUT:-90}))
  until python3 "$HERE/wait_kafka.py" "127.0.0.1:$port"; do
    if ! kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      log "broker did not come up; last log lines:"; tail -n 30 "$dir/kafka.log" >&2
      stop "$dir"; exit 1
    fi
    sleep 0.5
  done
  log "ready on 127.0.0.1:$port (Kafka $KAFKA_VERSION, data in $dir)"
}

stop() {
  local dir=$1
  [ -f "$dir/kafka.pid" ] || return 0
  local pid; pid="$(cat "$dir/kafka.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:?data dir}" "${3:-9092}" ;;
  stop) stop "${2:?data dir}" ;;
  *) echo "usage: $0 fetch | start DATA_DIR [PORT] | stop DATA_DIR" >&2; exit 2 ;;
esac
