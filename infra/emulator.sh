#!/usr/bin/env bash
# Runs the deployed path of Opkit on one machine: starts the AWS emulator (moto's server),
# creates the DynamoDB table and the jobs queue + dead-letter queue in it as template.yaml
# defines them (`opkit init --store dynamodb --queue sqs`), prints the environment to use in
# other terminals, and stays in the foreground until Ctrl-C, which stops the emulator.
# The emulator keeps everything in memory: stopping it forgets the table and the queues.
#
#   bash infra/emulator.sh                 port 5000
#   bash infra/emulator.sh --port 4566     another port
#   bash infra/emulator.sh --no-init       only the emulator (create things yourself)
#
# Environment: OPKIT_VENV (default .venv, shared with infra/test.sh) is where moto is
# installed if it is missing; OPKIT_TABLE (default opkit) names the table. Then, in other
# terminals, with the printed exports (OPKIT_ENVELOPE_KEY among them, made up for this run):
# `opkit serve --store dynamodb --queue sqs`, `opkit worker` and `opkit expire`
# (infra/DEPLOY.md, "The whole path on one machine").
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${OPKIT_VENV:-$PWD/.venv}"
moto_spec='moto[server]==5.2.5'
port=5000
init=1

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] || usage; port="$2"; shift 2 ;;
    --port=*) port="${1#--port=}"; shift ;;
    --no-init) init=0; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
case "$port" in
  ''|*[!0-9]*) echo "--port wants a number, not '$port'" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*" >&2; }

if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  say "installing $moto_spec into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$moto_spec"
fi

if ! python3 - "$port" <<'PY' 2>/dev/null; then
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
  echo "port $port on 127.0.0.1 is taken; pick another with --port" >&2
  exit 1
fi

say "starting the AWS emulator (moto) on 127.0.0.1:$port"
"$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" &
moto_pid=$!
stop_moto() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
}
trap stop_moto EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 100); do
  if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    say "the emulator exited"; exit 1
  fi
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export OPKIT_TABLE="${OPKIT_TABLE:-opkit}"
unset AWS_PROFILE AWS_SESSION_TOKEN

queue_url=""
if [ "$init" = 1 ]; then
  say "creating the table '$OPKIT_TABLE' and the queues: opkit init --store dynamodb --queue sqs"
  if ! init_out="$(cargo run -q --bin opkit -- init --store dynamodb --queue sqs)"; then
    say "opkit init failed (see above); the emulator is still up, use --no-init to skip it"
  else
    printf '%s\n' "$init_out"
    # init prints the jobs queue's URL (and may print the dead-letter queue's too).
    queue_url="$(printf '%s\n' "$init_out" | grep -Eo 'https?://[^[:space:]]+' \
      | grep -viE 'dlq|dead' | head -n 1 || true)"
  fi
fi

# A key for this run's job envelopes: `serve --queue sqs` seals with it, `worker` opens with it.
envelope_key="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

cat <<EOF

# The emulator is up. In another terminal, paste:
export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
export OPKIT_TABLE=$OPKIT_TABLE
export OPKIT_QUEUE_URL=${queue_url:-<the jobs queue URL printed by opkit init>}
export OPKIT_ENVELOPE_KEY=$envelope_key

# Ctrl-C here stops the emulator (and forgets the table and queues).
EOF

wait "$moto_pid"
