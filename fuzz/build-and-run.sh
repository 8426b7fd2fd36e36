#!/usr/bin/env bash
# Builds the fuzz targets the way `cargo fuzz build` does (nightly, SanitizerCoverage, --cfg
# fuzzing; no ASan: the targets' code is safe Rust, where a panic is what we hunt) and runs each
# for SECONDS (default 60). For machines without cargo-fuzz; with it, `cargo fuzz run <target>`.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
target=x86_64-unknown-linux-gnu
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
cargo +nightly build --release --target "$target" --bins
for t in request_decode transform_manifest acl_wire; do
  mkdir -p "corpus/$t" "artifacts/$t"
  "target/$target/release/$t" -max_total_time="$seconds" -artifact_prefix="artifacts/$t/" "corpus/$t"
done
