#!/usr/bin/env bash
# Builds the libFuzzer targets on the stable toolchain and runs each for SECONDS (default 60).
# Usage: fuzz/build-and-run.sh [SECONDS] [TARGET...]
#
# What `cargo fuzz build` does needs nightly only for its sanitizer flags; the SanitizerCoverage
# instrumentation libFuzzer feeds on is plain stable codegen flags. `sancov-rustc` (the
# RUSTC_WRAPPER) adds them to our crates only (sluice, sluice-fuzz, the vendored
# kafka-protocol), so every other crate — wasmtime, tokio, … — is the very artifact
# `cargo build --release -p sluice` already made in the main target directory, and only our
# crates are compiled again. No AddressSanitizer: the code under test is safe Rust, where what
# we hunt is a panic (an abort under libFuzzer), an overflow (overflow checks are on), a hang
# (-timeout) or runaway memory (-rss_limit_mb).
#
# Exit status 1 if any target crashed; the input that did it is kept under
# fuzz/artifacts/<target>/ and its path printed, with the tail of the target's output.
# Reproduce with `target/release/<target> fuzz/artifacts/<target>/crash-…`.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(request_decode transform_manifest acl_wire manifest_yaml)
fi

root="$(cd .. && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
export CARGO_TARGET_DIR="$target_dir"
export RUSTC_WRAPPER="$PWD/sancov-rustc"
# The main workspace's lock file, so the third-party crates resolve to the versions (and so the
# artifacts) the broker build uses; cargo only adds libfuzzer-sys to it.
cp ../Cargo.lock Cargo.lock
cargo build --release --bins

failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  echo "fuzz: $t for ${seconds}s"
  if "$target_dir/release/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" "corpus/$t" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' ' | sed "s/^/fuzz: $t: /"
    echo
  else
    echo "fuzz: $t FAILED; last lines of $PWD/$log:"
    tail -n 40 "$log"
    for a in $(grep -oE "artifacts/$t/[a-z-]+-[0-9a-f]+" "$log" | sort -u); do
      echo "fuzz: $t: crashing input: $PWD/$a"
    done
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}"
  exit 1
fi
