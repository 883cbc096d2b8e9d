#!/usr/bin/env bash
# Brings up the real services Fieldline's tests, benchmarks and local runs use, on loopback only:
#   PostgreSQL 15 (Debian package), Mosquitto (Debian package), InfluxDB 1.8 (built from the Go module proxy).
#
#   scripts/services.sh up [postgres|mosquitto|influxdb ...]   install if missing, start, wait ready (idempotent)
#   scripts/services.sh down                                   stop everything this script started
#   scripts/services.sh stop|start|restart SERVICE             for fault tests
#   scripts/services.sh env                                    print the environment the tests read (export lines)
#   scripts/services.sh status
#
# State (configs, data, logs, the generated PostgreSQL passwords) lives in $FIELDLINE_STATE_DIR
# (default: ${XDG_STATE_HOME:-$HOME/.local/state}/fieldline), never in the repository.
set -euo pipefail

STATE="${FIELDLINE_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/fieldline}"
PG_VERSION="${FIELDLINE_PG_VERSION:-15}"
PG_CLUSTER=main
PG_PORT="${FIELDLINE_PG_PORT:-5432}"
MQTT_PORT="${FIELDLINE_MQTT_PORT:-1883}"
INFLUX_PORT="${FIELDLINE_INFLUX_PORT:-8086}"
INFLUX_VERSION=v1.8.10
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

log() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: error: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "$name did not become ready within ${secs}s"
}

# ---------------------------------------------------------------- PostgreSQL
pg_bin() { echo "/usr/lib/postgresql/$PG_VERSION/bin"; }
# pg_password [NAME]: the generated password of a role, kept in $STATE/NAME.password (default: postgres, the
# ingester's role "fieldline"; postgres-reader: Grafana's SELECT-only "fieldline_reader"; postgres-admin: a
# superuser the tests use to check what the plugin says about over-privileged roles).
pg_password() {
  local name=${1:-postgres}
  mkdir -p "$STATE"
  if [ ! -s "$STATE/$name.password" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$STATE/$name.password")
  fi
  cat "$STATE/$name.password"
}
pg_psql() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" "$@"; }

postgres_up() {
  apt_install "postgresql-$PG_VERSION" postgresql-client-common
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $PG_CLUSTER"; then
    log "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER"
    as_root pg_createcluster "$PG_VERSION" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
  fi
  if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
  fi
  wait_for postgres 30 runuser -u postgres -- "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  local pw rpw apw; pw=$(pg_password); rpw=$(pg_password postgres-reader); apw=$(pg_password postgres-admin)
  # fieldline: the ingester's role (owns the schema it migrates; CREATEDB for the tests' throwaway databases).
  # fieldline_reader: Grafana's role, SELECT only (migration 7 grants it; read-only by default).
  # fieldline_admin: a superuser for the tests that check the plugin's warning about over-privileged roles.
  pg_psql -v pw="$pw" -v rpw="$rpw" -v apw="$apw" <<'SQL'
SELECT format('CREATE ROLE fieldline LOGIN CREATEDB PASSWORD %L', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline') \gexec
SELECT format('ALTER ROLE fieldline PASSWORD %L', :'pw') \gexec
SELECT format('CREATE ROLE fieldline_reader LOGIN PASSWORD %L', :'rpw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline_reader') \gexec
SELECT format('ALTER ROLE fieldline_reader NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'rpw') \gexec
ALTER ROLE fieldline_reader SET default_transaction_read_only = on;
SELECT format('CREATE ROLE fieldline_admin LOGIN SUPERUSER PASSWORD %L', :'apw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fieldline_admin') \gexec
SELECT format('ALTER ROLE fieldline_admin PASSWORD %L', :'apw') \gexec
SELECT 'CREATE DATABASE fieldline OWNER fieldline'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'fieldline') \gexec
SQL
  # Zero-configuration runs of the ingester use postgres://fieldline@127.0.0.1:5432/fieldline, and the README's
  # psql commands the same; libpq and pgx read the passwords from ~/.pgpass, which they ignore unless only its
  # owner can read it: every file here is written under umask 077 (mode 0600).
  local pgpass="$HOME/.pgpass"
  (
    umask 077
    touch "$pgpass"
    grep -vE "^127\.0\.0\.1:$PG_PORT:\*:fieldline(_reader)?:" "$pgpass" >"$pgpass.tmp" || true
    printf '%s\n' "127.0.0.1:$PG_PORT:*:fieldline:$pw" "127.0.0.1:$PG_PORT:*:fieldline_reader:$rpw" >>"$pgpass.tmp"
    chmod 600 "$pgpass.tmp"
    mv "$pgpass.tmp" "$pgpass"
  )
}
postgres_start() { postgres_up; }
postgres_stop() {
  if pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
  fi
}
postgres_ready() { runuser -u postgres -- "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

# ---------------------------------------------------------------- Mosquitto
mosq_pid() { cat "$STATE/mosquitto/mosquitto.pid" 2>/dev/null || true; }
mosquitto_running() { local p; p=$(mosq_pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
mosquitto_up() {
  apt_install mosquitto mosquitto-clients
  mkdir -p "$STATE/mosquitto/data"
  # Settings that keep a persistent session's messages: Mosquitto's defaults keep nothing across a restart and
  # drop a client's queue past 1000 messages. The ingester holds acknowledgements until its sinks commit, so the
  # in-flight window must cover a few batches (the ingester's mqtt.max_inflight must be at least this).
  cat >"$STATE/mosquitto/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
user $(id -un)
persistence true
persistence_location $STATE/mosquitto/data/
autosave_interval 30
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 20000
# The real guard against huge messages: paho reads a whole packet before the ingester's 64 KiB payload limit.
max_packet_size 131072
persistent_client_expiration 7d
set_tcp_nodelay true
pid_file $STATE/mosquitto/mosquitto.pid
log_dest file $STATE/mosquitto/mosquitto.log
log_type error
log_type warning
log_type notice
EOF
  if ! mosquitto_running; then
    # (as root it warns that it should not run as root: the state directory is the invoking user's)
    mosquitto -c "$STATE/mosquitto/mosquitto.conf" -d 2>/dev/null
  fi
  wait_for mosquitto 15 mosquitto_ready
}
mosquitto_ready() { mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t fieldline/services/ping -n -q 0; }
mosquitto_stop() {
  local p; p=$(mosq_pid)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    local i; for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && die "mosquitto (pid $p) did not stop"
  fi
  rm -f "$STATE/mosquitto/mosquitto.pid"
}
mosquitto_start() { mosquitto_up; }

# ---------------------------------------------------------------- InfluxDB 1.8
influxd_bin() {
  local gobin; gobin="$(go env GOBIN)"; [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
  echo "$gobin/influxd"
}
influx_pidfile() { echo "$STATE/influxdb/influxd.pid"; }
influxdb_running() { local p; p=$(cat "$(influx_pidfile)" 2>/dev/null || true); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
influxdb_ready() { curl -fsS "http://127.0.0.1:$INFLUX_PORT/ping" -o /dev/null; }
influxdb_up() {
  local bin; bin=$(influxd_bin)
  if [ ! -x "$bin" ] || ! go version -m "$bin" 2>/dev/null | grep -Eq "^\s+mod\s+github.com/influxdata/influxdb\s+$INFLUX_VERSION"; then
    log "building influxd $INFLUX_VERSION from the Go module proxy (about 2 minutes, cached afterwards)"
    (cd / && GOFLAGS=-mod=mod go install "github.com/influxdata/influxdb/cmd/influxd@$INFLUX_VERSION")
  fi
  mkdir -p "$STATE/influxdb"
  cat >"$STATE/influxdb/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$STATE/influxdb/meta"
[data]
  dir = "$STATE/influxdb/data"
  wal-dir = "$STATE/influxdb/wal"
  query-log-enabled = false
  index-version = "tsi1"
[http]
  enabled = true
  bind-address = "127.0.0.1:$INFLUX_PORT"
  auth-enabled = false
  log-enabled = false
  flux-enabled = true
[logging]
  level = "warn"
[continuous_queries]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
EOF
  if ! influxdb_running; then
    nohup "$bin" run -config "$STATE/influxdb/influxdb.conf" -pidfile "$(influx_pidfile)" \
      >>"$STATE/influxdb/influxd.log" 2>&1 </dev/null &
    disown || true
  fi
  wait_for influxdb 60 influxdb_ready
  curl -fsS -XPOST "http://127.0.0.1:$INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE fieldline" -o /dev/null
}
influxdb_stop() {
  local p; p=$(cat "$(influx_pidfile)" 2>/dev/null || true)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    local i; for ((i = 0; i < 150; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; sleep 0.2; }
  fi
  rm -f "$(influx_pidfile)"
}
influxdb_start() { influxdb_up; }

# ---------------------------------------------------------------- commands
print_env() {
  local pw rpw apw; pw=$(pg_password); rpw=$(pg_password postgres-reader); apw=$(pg_password postgres-admin)
  cat <<EOF
export FIELDLINE_TEST_POSTGRES_URL='postgres://fieldline:$pw@127.0.0.1:$PG_PORT/fieldline?sslmode=disable'
export FIELDLINE_TEST_POSTGRES_READER_URL='postgres://fieldline_reader:$rpw@127.0.0.1:$PG_PORT/fieldline?sslmode=disable'
export FIELDLINE_TEST_POSTGRES_ADMIN_URL='postgres://fieldline_admin:$apw@127.0.0.1:$PG_PORT/fieldline?sslmode=disable'
export FIELDLINE_TEST_MQTT_URL='tcp://127.0.0.1:$MQTT_PORT'
export FIELDLINE_TEST_INFLUX_URL='http://127.0.0.1:$INFLUX_PORT'
export FIELDLINE_TEST_INFLUX_ORG='fieldline'
export FIELDLINE_TEST_INFLUX_BUCKET='fieldline'
export FIELDLINE_TEST_INFLUX_TOKEN=''
export FIELDLINE_SERVICES='$SELF'
export FIELDLINE_STATE_DIR='$STATE'
EOF
}

canon() {
  case "$1" in
    postgres | postgresql | pg) echo postgres ;;
    mosquitto | mqtt | broker) echo mosquitto ;;
    influxdb | influx) echo influxdb ;;
    *) die "unknown service '$1' (postgres, mosquitto, influxdb)" ;;
  esac
}

cmd=${1:-up}; shift || true
case "$cmd" in
  up)
    svcs=("$@"); [ ${#svcs[@]} -eq 0 ] && svcs=(postgres mosquitto influxdb)
    for s in "${svcs[@]}"; do s=$(canon "$s"); "${s}_up"; log "$s ready"; done
    print_env
    ;;
  down)
    for s in influxdb mosquitto postgres; do "${s}_stop"; done
    log "stopped"
    ;;
  stop | start)
    [ $# -ge 1 ] || die "usage: $0 $cmd SERVICE"
    for s in "$@"; do s=$(canon "$s"); "${s}_$cmd"; done
    ;;
  restart)
    [ $# -ge 1 ] || die "usage: $0 restart SERVICE"
    for s in "$@"; do s=$(canon "$s"); "${s}_stop"; "${s}_up"; done
    ;;
  env) print_env ;;
  status)
    for s in postgres mosquitto influxdb; do
      if "${s}_ready" 2>/dev/null; then echo "$s: up"; else echo "$s: down"; fi
    done
    ;;
  *) die "unknown command '$cmd' (up, down, start, stop, restart, env, status)" ;;
esac
