//! A transform's module: `spec.wasm` (a file relative to the manifest, or an `http(s)://` URL)
//! and `spec.wasmSha256` (its pin). Decoding checks their shape; [`read_modules`] reads every
//! module before anything changes, so an unreadable file, an HTTP error, an unreachable host, an
//! oversized module or a pin mismatch is one more located problem, reported with all the others.
//!
//! A URL must be pinned: a manifest names exactly one module, and re-applying it later deploys
//! the same bytes (or fails) instead of whatever the server holds that day. The fetch itself is
//! the caller's (the CLI passes an HTTP client): this module knows no network.

use std::collections::BTreeMap;

use super::decode::Ctx;
use super::error::Problem;
use super::load::Loaded;
use super::locate::{At, FieldPath};
use super::model::{Object, WasmSource};
use crate::transform::module::{sha256_hex, MODULE_BYTES_MAX};

/// A module's bytes and hex SHA-256, by transform name.
pub type Modules = BTreeMap<String, (Vec<u8>, String)>;

/// Fetches a URL's bytes, stopping past the given size; `Err` is one line saying why.
pub type Fetch<'a> = &'a dyn Fn(&str, usize) -> Result<Vec<u8>, String>;

/// Checks a `wasmSha256` value: 64 hex digits (any case; kept lower-case).
pub fn pin(ctx: &mut Ctx, path: &FieldPath, pin: &str) -> Option<String> {
    if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(pin.to_ascii_lowercase());
    }
    ctx.report(path, At::Value, "expected 64 hex digits (the module's SHA-256, as `sha256sum` prints it)");
    None
}

/// Checks an `http(s)://` `wasm` value.
pub fn url(ctx: &mut Ctx, path: &FieldPath, wasm: &str) -> Option<WasmSource> {
    match url::Url::parse(wasm) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Some(WasmSource::Url(wasm.to_string())),
        Ok(_) => {
            ctx.report(path, At::Value, "the URL has no host");
            None
        }
        Err(e) => {
            ctx.report(path, At::Value, format!("not a valid URL: {e}"));
            None
        }
    }
}

/// Reads (files) or fetches (URLs, with `fetch`, which must stop past `MODULE_BYTES_MAX + 1`
/// bytes) every transform's module, checking size and pin. Problems are located at `spec.wasm`.
pub fn read_modules(loaded: &Loaded, fetch: Fetch<'_>) -> (Modules, Vec<Problem>) {
    let mut modules = Modules::new();
    let mut problems = Vec::new();
    for l in &loaded.docs {
        let Object::Transform(t) = &l.doc.object else { continue };
        let path = FieldPath::default().key("spec").key("wasm");
        let mut problem = |message: String| {
            let pos = l.loc.find(&path, At::Value);
            problems.push(Problem { file: l.doc.origin.file.clone(), line: pos.line, column: pos.column, path: path.to_string(), message });
        };
        let bytes = match &t.wasm {
            // A missing file was reported while decoding; say it once.
            WasmSource::File(file) if !file.is_file() => continue,
            WasmSource::File(file) => match std::fs::metadata(file) {
                Ok(m) if m.len() > MODULE_BYTES_MAX as u64 => {
                    Err(format!("{}: {} bytes, more than the module limit of {MODULE_BYTES_MAX}", file.display(), m.len()))
                }
                _ => std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display())),
            },
            WasmSource::Url(url) => fetch(url, MODULE_BYTES_MAX).and_then(|b| {
                if b.len() > MODULE_BYTES_MAX {
                    Err(format!("{url}: more than the module limit of {MODULE_BYTES_MAX} bytes"))
                } else {
                    Ok(b)
                }
            }),
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                problem(e);
                continue;
            }
        };
        let sha = sha256_hex(&bytes);
        if let Some(pin) = t.wasm_sha256.as_ref().filter(|pin| **pin != sha) {
            problem(format!("the module's SHA-256 is {sha}, but wasmSha256 pins {pin}"));
            continue;
        }
        modules.insert(l.doc.name.clone(), (bytes, sha));
    }
    (modules, problems)
}
