#!/usr/bin/env bash
# `sam build` of the three Lambda functions for arm64 (the template's default) on an
# x86_64 Debian or Ubuntu host, then a check of the three `bootstrap`s it made.
#
#   bash infra/build-arm64.sh            builds into .aws-sam/build (what `sam deploy` reads)
#   OPKIT_SAM_BUILD_DIR=DIR bash infra/build-arm64.sh      builds into DIR instead
#   bash infra/build-arm64.sh --check-only                 only checks what DIR holds
#
# What it uses (infra/DEPLOY.md, "Building for arm64 on x86_64"):
# - the SAM CLI and cargo-lambda, pinned below, from PyPI into $OPKIT_ARM_VENV
#   (default ~/.cache/opkit-arm/venv, outside the clone);
# - Debian's aarch64 cross gcc (`apt-get install gcc-aarch64-linux-gnu`): the linker named in
#   .cargo/config.toml, and the C compiler the `cc` crate finds by the target's name for
#   ring and aws-lc-sys; cargo-lambda is told to call cargo (CARGO_LAMBDA_COMPILER=cargo),
#   not zig;
# - the rustup target aarch64-unknown-linux-gnu (added if missing).
#
# The check, per function: an aarch64 ELF executable linked without PIE
# (functions/no_pie.rs), needing only glibc's own libraries and libgcc_s, no glibc symbol
# newer than 2.34 (Lambda's provided.al2023 has glibc 2.34), and the TLS provider its
# crate picks (the ingress: ring, no aws-lc). It prints each one's size (the release
# profile strips them).
set -euo pipefail
cd "$(dirname "$0")/.."

sam_cli='aws-sam-cli==1.170.0'
cargo_lambda='cargo-lambda==1.9.2'
venv="${OPKIT_ARM_VENV:-$HOME/.cache/opkit-arm/venv}"
build_dir="${OPKIT_SAM_BUILD_DIR:-.aws-sam/build}"
target=aarch64-unknown-linux-gnu
# The newest glibc symbol version provided.al2023 has.
glibc_max=2.34

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'build-arm64: %s\n' "$*" >&2
  exit 1
}

build() {
  command -v aarch64-linux-gnu-gcc >/dev/null ||
    die "no aarch64-linux-gnu-gcc: sudo apt-get install gcc-aarch64-linux-gnu"
  if ! rustup target list --installed | grep -qx "$target"; then
    say "rustup target add $target"
    rustup target add "$target"
  fi
  if ! "$venv/bin/python" - "$sam_cli" "$cargo_lambda" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    assert version(name) == want, spec
PY
    say "installing $sam_cli $cargo_lambda into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$sam_cli" "$cargo_lambda"
  fi
  # The SAM CLI keeps its settings here, with telemetry off and no update check.
  local sam_home="$venv/sam-cli-home"
  if [ ! -f "$sam_home/metadata.json" ]; then
    mkdir -p "$sam_home"
    printf '{"telemetryEnabled": false, "lastVersionCheck": 32503680000.0}\n' >"$sam_home/metadata.json"
  fi
  say "sam build (arm64; cargo-lambda with cargo and Debian's cross gcc) into $build_dir"
  # The venv's bin first: sam finds cargo-lambda on PATH. samconfig.toml turns on the
  # SAM CLI's beta Rust builder (beta_features) and builds one function at a time.
  PATH="$venv/bin:$PATH" CARGO_LAMBDA_COMPILER=cargo SAM_CLI_TELEMETRY=0 \
    __SAM_CLI_APP_DIR="$sam_home" \
    sam build --build-dir "$build_dir" --parameter-overrides Architecture=arm64
}

# Highest GLIBC_x.y version a binary's dynamic symbols ask for.
glibc_needed() {
  objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1
}

check() {
  local fn="$1" bin="$2" tls="$3" failed=0
  local file="$build_dir/$fn/bootstrap"
  [ -f "$file" ] || die "$file: missing (run without --check-only first)"
  local header
  header="$(readelf -h "$file")"
  grep -q 'Machine:.*AArch64' <<<"$header" || { say "$fn: not an aarch64 binary"; failed=1; }
  grep -q 'Type:.*EXEC' <<<"$header" || { say "$fn: linked as PIE (functions/no_pie.rs did not apply)"; failed=1; }
  local needed unexpected
  needed="$(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
  unexpected="$(tr ' ' '\n' <<<"$needed" |
    grep -v -E '^(|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|ld-linux-aarch64\.so\.1)$' || true)"
  [ -z "$unexpected" ] || { say "$fn: unexpected shared libraries: $unexpected"; failed=1; }
  local glibc
  glibc="$(glibc_needed "$file")"
  [ "$(printf '%s\n%s\n' "$glibc" "$glibc_max" | sort -V | tail -n 1)" = "$glibc_max" ] ||
    { say "$fn: needs GLIBC_$glibc, provided.al2023 has $glibc_max"; failed=1; }
  # The crates' source paths stay in the binary (panic locations: `.../ring-0.17.14/src/...`),
  # so they tell which TLS provider was linked in.
  local crates has_aws_lc=no has_ring=no
  crates="$(strings -n 6 "$file" | grep -o -E '/(ring|aws-lc-rs|aws-lc-sys)-[0-9][0-9.]*/' | sort -u || true)"
  grep -q '^/aws-lc-' <<<"$crates" && has_aws_lc=yes
  grep -q '^/ring-' <<<"$crates" && has_ring=yes
  case "$tls" in
    ring)
      [ "$has_aws_lc" = no ] || { say "$fn: links aws-lc (its crate picks ring)"; failed=1; }
      [ "$has_ring" = yes ] || { say "$fn: no ring in it (its crate picks ring)"; failed=1; }
      ;;
    aws-lc) [ "$has_aws_lc" = yes ] || { say "$fn: no aws-lc in it (its crate picks aws-lc)"; failed=1; } ;;
  esac
  printf '%-8s %-18s %10s B  GLIBC_%s  NEEDED: %s aws-lc: %s ring: %s\n' \
    "$bin" "$fn/bootstrap" "$(stat -c %s "$file")" "$glibc" "$needed" "$has_aws_lc" "$has_ring"
  return "$failed"
}

[ "${1:-}" = --check-only ] || build
say "checking the bootstraps in $build_dir"
status=0
check IngressFunction ingress ring || status=1
check WorkerFunction worker aws-lc || status=1
check ExpiryFunction expiry aws-lc || status=1
[ "$status" = 0 ] || die "a bootstrap failed its check (above)"
say "all three bootstraps passed; run them under qemu-user: OPKIT_SAM_BUILD_DIR=$build_dir bash infra/bench.sh arm64"
