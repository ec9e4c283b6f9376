#!/usr/bin/env bash
# Sourced by the build and test scripts: decides how to build for wasm32-unknown-unknown.
#
# If the active rustup toolchain already has the wasm32 target (a developer laptop after
# `rustup target add wasm32-unknown-unknown`), plain `cargo --target wasm32-unknown-unknown`
# is used. Otherwise it falls back to Debian's Rust with its std source (`rustc-web`,
# `rust-web-src`, `lld-22`), building std for wasm32 with `-Zbuild-std`, in its own target
# directory so the two compilers never share artifacts. Sets WASM_CARGO (an array) and
# WASM_TARGET_DIR.

WASM_TARGET=wasm32-unknown-unknown
sysroot_has_wasm() {
  local sysroot
  sysroot=$(rustc --print sysroot 2>/dev/null) || return 1
  [ -d "$sysroot/lib/rustlib/$WASM_TARGET" ]
}

if sysroot_has_wasm; then
  WASM_MODE=rustup
  WASM_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  WASM_CARGO=(cargo)
  WASM_BUILD_STD=()
  WASM_BUILD_STD_TEST=()
elif [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust ] && command -v rust-lld >/dev/null 2>&1; then
  WASM_MODE=debian
  WASM_TARGET_DIR="target/wasm"
  WASM_CARGO=(env RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo)
  WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
  WASM_BUILD_STD_TEST=(-Zbuild-std=std,panic_abort,test)
else
  WASM_MODE=missing
fi
export WASM_TARGET WASM_MODE WASM_TARGET_DIR
