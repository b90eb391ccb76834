#!/usr/bin/env bash
# Makes sure RabbitMQ (127.0.0.1:5672, guest/guest) and PostgreSQL
# (127.0.0.1:5432, user postgres, trust) are installed and running, from
# Debian's packages. Idempotent: does nothing when both already answer.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do
    if port_open "$port"; then return 0; fi
    sleep 0.5
  done
  echo "services.sh: $what did not come up on port $port" >&2
  return 1
}

apt_updated=""
install() {
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

# RabbitMQ
if ! port_open 5672; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "installing rabbitmq-server"
    install rabbitmq-server
  fi
  echo "starting RabbitMQ"
  $SUDO rabbitmq-server -detached || true
  wait_port 5672 RabbitMQ
fi
# Wait until the node accepts commands too (vhost tests use rabbitmqctl).
for _ in $(seq 1 60); do
  if $SUDO rabbitmqctl -q status >/dev/null 2>&1; then break; fi
  sleep 1
done

# PostgreSQL
if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "installing postgresql"
    install postgresql
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
  wait_port 5432 PostgreSQL
fi
# Trust for local TCP connections as postgres (a fresh Debian install asks
# for a password on 127.0.0.1).
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  echo "configuring trust authentication for 127.0.0.1 in $hba"
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload || $SUDO pg_ctlcluster "$version" main reload
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null
fi
echo "services.sh: RabbitMQ and PostgreSQL are up"
