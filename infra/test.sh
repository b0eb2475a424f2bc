#!/usr/bin/env bash
# Runs every test Opkit has: formatting, lints, unit and handler tests, and the
# end-to-end tests against an AWS emulator (moto's server) and a fake Slack.
#
# On a fresh machine it installs what it needs (moto in a venv), starts the
# emulator on a free loopback port, and stops it when done, pass or fail.
#
#   bash infra/test.sh                 everything
#   bash infra/test.sh -p opkit        extra arguments go to `cargo test`
#
# Environment: OPKIT_VENV (default .venv) is where moto is installed; the template's
# checkers (cfn-lint, SAM CLI) get a venv of their own inside it, $OPKIT_VENV/sam-tools,
# because the SAM CLI pins older boto3/botocore/click than moto's and would change the
# emulator under the tests. CARGO_TARGET_DIR is honoured (CI points it at a cache outside
# the clone).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${OPKIT_VENV:-$PWD/.venv}"
moto_spec='moto[server]==5.2.5'
cbor_spec='cbor2==6.3.0'  # for infra/cloudwatch_bridge.py

say() { printf '==> %s\n' "$*" >&2; }

if ! "$venv/bin/python" -c 'import moto.server, cbor2' 2>/dev/null; then
  say "installing $moto_spec $cbor_spec into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$moto_spec" "$cbor_spec"
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "starting the AWS emulator (moto) on 127.0.0.1:$port"
moto_log="$(mktemp -t opkit-moto.XXXXXX.log)"
"$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
stop_moto() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -f "$moto_log"
}
trap stop_moto EXIT

# Wait for the emulator to answer (it starts in about a second).
for _ in $(seq 1 100); do
  if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    say "the emulator exited:"; cat "$moto_log" >&2; exit 1
  fi
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"

# --- CloudWatch bridge: the current SDK speaks Smithy RPC v2 CBOR, moto does not;
# infra/cloudwatch_bridge.py re-issues each call against moto with boto3. ---
bridge_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" infra/cloudwatch_bridge.py --port "$bridge_port" --moto "$AWS_ENDPOINT_URL" 2>/dev/null &
bridge_pid=$!
trap 'kill "$bridge_pid" 2>/dev/null || true; stop_moto' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$bridge_port/', timeout=1)" 2>/dev/null; then break; fi
  kill -0 "$bridge_pid" 2>/dev/null || { say "the CloudWatch bridge exited"; exit 1; }
  sleep 0.2
done
export AWS_ENDPOINT_URL_CLOUDWATCH="http://127.0.0.1:$bridge_port"
# --- end CloudWatch bridge ---
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# Licences, bans and sources of every dependency (deny.toml). cargo-deny is built
# once into $OPKIT_VENV/cargo-tools (CI keeps it in its cache); advisories need the
# RustSec database from GitHub, so they are a documented command, not CI.
deny_root="$venv/cargo-tools"
deny_spec='0.20.2'
if ! "$deny_root/bin/cargo-deny" --version 2>/dev/null | grep -q " $deny_spec\$"; then
  say "installing cargo-deny $deny_spec into $deny_root (a few minutes, once)"
  cargo install --quiet --locked --root "$deny_root" cargo-deny --version "$deny_spec"
fi
say "cargo deny check licenses bans sources"
"$deny_root/bin/cargo-deny" --offline check licenses bans sources

say "cargo test"
cargo test --workspace --all-features --locked "$@"

# The SAM template: CloudFormation's linter, then SAM's own validator, which translates the
# template and catches what cfn-lint lets through (e.g. a bad SAM policy template). Both run
# offline: a region and dummy credentials are enough, and nothing is sent anywhere.
# (`sam validate --lint` would only run cfn-lint a second time.)
sam_venv="$venv/sam-tools"
sam_specs=('cfn-lint==1.58.0' 'aws-sam-cli==1.170.0')
if ! "$sam_venv/bin/python" - "${sam_specs[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(name) != want for name, want in (s.split("==") for s in sys.argv[1:])))
PY
  say "installing ${sam_specs[*]} into $sam_venv"
  python3 -m venv "$sam_venv"
  "$sam_venv/bin/pip" install --quiet --disable-pip-version-check "${sam_specs[@]}"
fi
say "cfn-lint template.yaml"
"$sam_venv/bin/cfn-lint" template.yaml
# SAM_CLI_TELEMETRY=0 stops the usage metrics; a last version check far in the future (a
# float, or SAM ignores it) in its own config dir stops the weekly request to PyPI.
sam_home="$sam_venv/sam-cli-home"
if [ ! -f "$sam_home/metadata.json" ]; then
  mkdir -p "$sam_home"
  printf '{"telemetryEnabled": false, "lastVersionCheck": 32503680000.0}\n' >"$sam_home/metadata.json"
fi
say "sam validate"
env -u AWS_ENDPOINT_URL SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR="$sam_home" \
  AWS_DEFAULT_REGION=us-east-1 "$sam_venv/bin/sam" validate --template-file template.yaml
