#!/usr/bin/env bash
# The two entry points of the README, on a fresh Debian 12 machine:
#   ./dev.sh run    install, migrate, load demo data, render prompts, serve
#   ./dev.sh test   install, then run the test suite (SQLite, and PostgreSQL when one answers)
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(python3 python3-venv python3-dev gcc libespeak-ng1 espeak-ng-data postgresql-client)
APT_TEST_PACKAGES=(chromium)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_system() {
  local wanted=("${APT_PACKAGES[@]}")
  [ "${1:-}" = test ] && wanted+=("${APT_TEST_PACKAGES[@]}")
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_python() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
}

postgres_url() {
  # The tests also run on PostgreSQL when a server answers on 127.0.0.1:5432.
  if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "postgresql+asyncpg://$(id -un)@127.0.0.1:5432/test"
  fi
}

case "${1:-}" in
  run)
    install_system
    install_python
    .venv/bin/ivr db upgrade
    .venv/bin/ivr seed --demo
    .venv/bin/ivr prompts build
    exec .venv/bin/ivr serve
    ;;
  test)
    shift
    install_system test
    install_python
    .venv/bin/ruff check ivr tests bench
    echo "== tests on SQLite"
    .venv/bin/python -m pytest "$@"
    url=$(postgres_url)
    if [ -n "$url" ]; then
      echo "== tests on PostgreSQL"
      IVR_TEST_DATABASE_URL="$url" .venv/bin/python -m pytest -m "not browser" "$@"
    else
      echo "== no PostgreSQL on 127.0.0.1:5432: SQLite only"
    fi
    ;;
  *)
    echo "usage: $0 run | test [pytest args]" >&2
    exit 2
    ;;
esac
