#!/usr/bin/env bash
# Make sure PostgreSQL and Redis are up on 127.0.0.1 (installing them from Debian's packages on a
# machine that lacks them), for the test suite and for running against real services.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; then
  echo "services: installing PostgreSQL and Redis from Debian's packages" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql redis-server >/dev/null
fi

if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "services: PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }

# The concurrency tests race 50 clients, each with its own connection, in two test processes:
# the default of 100 connections is too few. Raise it once (it needs a restart to apply).
max_conn=$(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SHOW max_connections' 2>/dev/null || echo 0)
if [ "${max_conn:-0}" -lt 300 ]; then
  echo "services: raising PostgreSQL max_connections from $max_conn to 300" >&2
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'ALTER SYSTEM SET max_connections = 300' >/dev/null
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main restart
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi

# The suite connects as postgres without a password (trust on 127.0.0.1, as on this kind of
# machine); make sure a database to connect to for CREATE DATABASE exists.
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -d postgres -c 'CREATE DATABASE test' >/dev/null 2>&1 || true
fi

if ! redis_up; then
  echo "services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
fi
redis_up || { echo "services: Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
echo "services: PostgreSQL and Redis are up" >&2
