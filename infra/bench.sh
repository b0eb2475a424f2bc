#!/usr/bin/env bash
# Opkit's whole-process benchmarks (not tests, not CI): cold starts of the three
# Lambda bootstraps under a minimal Runtime API beside a bare lambda_http floor and
# the peers (Bolt for Python, bolt-js), `opkit serve` under wrk, and the work path
# (stateful commands through the warm worker, SQS and DynamoDB on the emulator).
#
#   bash infra/bench.sh                 serve throughput, cold starts (20 rounds), work path
#   bash infra/bench.sh cold [FLAGS]    cold starts only; FLAGS go to opkit-bench
#   bash infra/bench.sh serve [FLAGS]   serve throughput only
#   bash infra/bench.sh work [FLAGS]    work path only: 100 commands a scenario (one at a
#                                       time, then a burst) through the release worker,
#                                       warm; SendMessage -> reply, DynamoDB requests and
#                                       units per command counted at the client.
#                                       OPKIT_BENCH_WORKER=FILE runs that worker bootstrap
#                                       instead of building one (no release build at all)
#   OPKIT_BENCH_ARM64=1 bash infra/bench.sh cold
#                                       also builds the aarch64 bootstraps and runs them
#                                       under qemu-user (needs gcc-aarch64-linux-gnu,
#                                       qemu-user and the rustup target: infra/DEPLOY.md)
#   bash infra/bench.sh arm64 [FLAGS]   only the arm64 bootstraps `sam build` made
#                                       (infra/build-arm64.sh; $OPKIT_SAM_BUILD_DIR,
#                                       default .aws-sam/build), under qemu-user: no
#                                       x86_64 build, no peers
#
# It builds each release binary on its own (as `sam build` does, so each gets only
# its own features), installs the peers into $OPKIT_BENCH_DIR (default
# ~/.cache/opkit-bench, outside the clone) from PyPI and npm, and starts the AWS
# emulator (moto, in $OPKIT_VENV as infra/test.sh installs it) on a free port.
# Needs: python3, node (>= 18) and npm for the peers; wrk for serve
# (`apt-get install wrk`); for arm64, what infra/DEPLOY.md lists.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-all}"
[ $# -gt 0 ] && shift
venv="${OPKIT_VENV:-$PWD/.venv}"
peers="${OPKIT_BENCH_DIR:-$HOME/.cache/opkit-bench}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
bolt_python='slack-bolt==1.30.0'
slack_sdk='slack-sdk==3.47.0'
# Lambda's Python runtime ships boto3, and Bolt's Lambda adapter imports it.
boto3='boto3==1.44.8'
bolt_js='@slack/bolt@5.1.0'

say() { printf '==> %s\n' "$*" >&2; }

case "$mode" in
  all | cold | serve | arm64 | work) ;;
  *)
    say "unknown mode $mode: all, cold, serve, work or arm64"
    exit 2
    ;;
esac
worker="${OPKIT_BENCH_WORKER:-$target/release/worker}"
if [ "$mode" = work ]; then
  if [ -z "${OPKIT_BENCH_WORKER:-}" ]; then
    say "release build of the worker (alone, as sam build does)"
    cargo build --release --locked -p opkit-worker
  elif [ ! -x "$worker" ]; then
    say "OPKIT_BENCH_WORKER=$worker is not an executable file"
    exit 2
  fi
elif [ "$mode" != arm64 ]; then
  say "release builds (each binary alone, as sam build does)"
  cargo build --release --locked -p opkit-ingress --bin ingress --example floor
  cargo build --release --locked -p opkit-worker
  cargo build --release --locked -p opkit-expiry
  cargo build --release --locked -p opkit-cli
fi
# The harness with the workspace's feature set (what `cargo test --workspace` builds):
# `-p opkit-tests` alone unifies features differently and recompiles the dependencies.
cargo build --locked --workspace --bins
if [ "$mode" != arm64 ] && [ "$mode" != work ] && [ "${OPKIT_BENCH_ARM64:-}" = 1 ]; then
  say "release builds for aarch64-unknown-linux-gnu (Debian's cross gcc, .cargo/config.toml)"
  arm=(--release --locked --target aarch64-unknown-linux-gnu)
  cargo build "${arm[@]}" -p opkit-ingress --bin ingress --example floor
  cargo build "${arm[@]}" -p opkit-worker
  cargo build "${arm[@]}" -p opkit-expiry
fi
bench="$target/debug/opkit-bench"

if [ "$mode" = all ] || [ "$mode" = serve ]; then
  say "opkit serve under wrk"
  "$bench" serve --opkit "$target/release/opkit" "$@"
fi
[ "$mode" = serve ] && exit 0

if [ "$mode" != arm64 ] && [ "$mode" != work ] && ! "$peers/py/bin/python" -c 'import slack_bolt, boto3' 2>/dev/null; then
  say "installing $bolt_python into $peers/py"
  python3 -m venv "$peers/py"
  "$peers/py/bin/pip" install --quiet --disable-pip-version-check "$bolt_python" "$slack_sdk" "$boto3"
fi
if [ "$mode" != arm64 ] && [ "$mode" != work ] && [ ! -d "$peers/js/node_modules/@slack/bolt" ]; then
  say "installing $bolt_js into $peers/js"
  mkdir -p "$peers/js"
  (cd "$peers/js" && npm install --silent --no-audit --no-fund --prefix . "$bolt_js")
fi

if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
  say "installing moto into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" infra/moto_server.py -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null && break
  kill -0 "$moto_pid" 2>/dev/null || { say "the emulator exited"; exit 1; }
  sleep 0.2
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

qemu=(--qemu "$(command -v qemu-aarch64 || echo qemu-aarch64)" --sysroot /usr/aarch64-linux-gnu)
if [ "$mode" = arm64 ]; then
  say "cold starts of the arm64 bootstraps sam build made, under qemu-user"
  "$bench" cold --sam-build "${OPKIT_SAM_BUILD_DIR:-.aws-sam/build}" "${qemu[@]}" "$@"
  exit 0
fi
if [ "$mode" = work ]; then
  say "work path: the warm worker, SQS and DynamoDB on the emulator"
  "$bench" work --worker "$worker" "$@"
  exit 0
fi
arm64=()
if [ "${OPKIT_BENCH_ARM64:-}" = 1 ]; then
  arm64=(--arm64 "$target/aarch64-unknown-linux-gnu/release" "${qemu[@]}")
fi

say "cold starts"
"$bench" cold --release "$target/release" --peers "$peers" "${arm64[@]}" "$@"

say "work path: the warm worker, SQS and DynamoDB on the emulator"
"$bench" work --worker "$worker"
