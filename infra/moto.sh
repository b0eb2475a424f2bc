#!/usr/bin/env bash
# Runs a command with the AWS emulator (moto's server) up on a free loopback port.
#
#   infra/moto.sh cargo test --workspace
#
# Installs moto[server] into a virtualenv on first use ($OPKIT_MOTO_VENV, default
# ~/.cache/opkit/venv-moto), starts it, exports AWS_ENDPOINT_URL, AWS_REGION and
# dummy credentials for the command, and stops the server afterwards.
set -euo pipefail

venv="${OPKIT_MOTO_VENV:-$HOME/.cache/opkit/venv-moto}"
moto_version="5.2.5"

if [[ ! -x "$venv/bin/moto_server" ]]; then
  echo "installing moto[server]==$moto_version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "moto[server]==$moto_version"
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto_server exited; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "moto_server on $AWS_ENDPOINT_URL (log: $log)" >&2
"$@"
