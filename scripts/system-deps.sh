#!/usr/bin/env bash
# The system packages a README command needs, installed when missing so a fresh clone works.
#   system-deps.sh base   what `make install` / `make dev` use: python3 venv, Java 17+, Maven
#   system-deps.sh test   base + what `make test` uses: kcat, a PostgreSQL server, promtool and
#                         prometheus, Go (builds stripe-mock), curl
# As root with apt-get, the missing packages are installed (one `apt-get update` first);
# otherwise the script stops with one line naming them. Nothing is done when all are present.
# BILLSTREAM_PG_BIN names a PostgreSQL server's bin directory, as for tests/support/postgres.py.
set -euo pipefail

set_name=${1:-}
case $set_name in
  base | test) ;;
  *)
    echo "usage: $0 base | test" >&2
    exit 2
    ;;
esac

python=${PYTHON:-python3}
missing=()  # what is missing, e.g. "promtool"
packages=() # the Debian packages that provide it, each once

need() {
  missing+=("$1")
  [[ " ${packages[*]} " == *" $2 "* ]] || packages+=("$2")
}
have() { command -v "$1" >/dev/null 2>&1; }

java_major() {
  # `java -version` prints e.g. `openjdk version "17.0.12" 2024-07-16` (or "1.8.0_...").
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\.\{0,1\}\([0-9]*\).*/\1 \2/p' | head -n 1 |
    awk '{ print ($1 == 1) ? $2 : $1 }'
}

postgres_server() {
  # The same search as tests/support/postgres.py: BILLSTREAM_PG_BIN, Debian's layout, then PATH.
  if [[ -n ${BILLSTREAM_PG_BIN:-} ]]; then
    [[ -x $BILLSTREAM_PG_BIN/initdb ]]
    return
  fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || have initdb || return 1
  # As root the tests run the server as `postgres` (it refuses root): the package creates it.
  [[ $(id -u) != 0 ]] || id postgres >/dev/null 2>&1
}

base() {
  "$python" -c 'import ensurepip, venv' 2>/dev/null || need "python3 venv" python3-venv
  if ! have java || (($(java_major || echo 0) < 17)); then
    need "Java 17+" default-jre-headless
  fi
  have mvn || need mvn maven
}

test_set() {
  have kcat || need kcat kcat
  postgres_server || need "PostgreSQL server" postgresql
  have promtool || need promtool prometheus
  have prometheus || need prometheus prometheus # the observability tests scrape with it
  have go || [[ -x /usr/local/go/bin/go ]] || need go golang-go
  have curl || need curl curl
}

base
[[ $set_name == base ]] || test_set
((${#missing[@]})) || exit 0

what=$(IFS=, && echo "${missing[*]}" | sed 's/,/, /g')
if [[ $(id -u) != 0 ]] || ! have apt-get; then
  echo "billstream: missing $what: run as root, or apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "billstream: installing ${packages[*]} (for $what)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
