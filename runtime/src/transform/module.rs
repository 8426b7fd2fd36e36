//! Deploy-time validation and compilation of a transform module: size limit, a WebAssembly core
//! module, the ABI version in the export names (v1 stateless, v2 stateful), the exports' types,
//! and imports limited to the WASI functions of `wasi`. Each way a module can be wrong is its own [`TransformError`].

use sha2::{Digest, Sha256};
use sluice_abi::{exports, Exports, ABI_VERSION, ABI_VERSIONS, EXPORTS_V1, EXPORT_MEMORY, EXPORT_PREFIX};
use wasmtime::{Engine, ExternType, Module, ValType};

use super::wasi::WASI_MODULE;
use super::TransformError;

/// The largest module accepted on deploy.
pub const MODULE_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A validated, compiled module and the hash it is stored and cached under.
#[derive(Clone)]
pub struct CompiledModule {
    /// The compiled code (cheap to clone).
    pub module: Module,
    /// Hex SHA-256 of the module bytes.
    pub sha256: String,
    /// The ABI version it is built for (v2: stateful).
    pub abi: Exports,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Validates and compiles `bytes`. Compilation goes through the engine's on-disk cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<CompiledModule, TransformError> {
    if bytes.len() > MODULE_BYTES_MAX {
        return Err(TransformError::ModuleTooLarge { size: bytes.len(), max: MODULE_BYTES_MAX });
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(TransformError::NotWasm { reason: "the bytes do not start with the \\0asm magic".into() });
    }
    // A component (layer 1) has the same magic with a different version field.
    if bytes.get(4..8) != Some(&[1, 0, 0, 0]) {
        return Err(TransformError::NotWasm {
            reason: "this is a component or an unknown wasm version; build a core module for wasm32-wasip1".into(),
        });
    }
    let module = Module::new(engine, bytes).map_err(|e| TransformError::Compile { reason: format!("{e:#}") })?;
    let abi = check_exports(&module)?;
    check_imports(&module)?;
    Ok(CompiledModule { module, sha256: sha256_hex(bytes), abi })
}

/// One export to check: name, what it does (for the error), parameter and result types, and the
/// signature as the error shows it.
type ExportCheck = (&'static str, &'static str, &'static [ValType], &'static [ValType], &'static str);

/// The ABI version (export names) `module` is built for, checked as on deploy.
pub fn abi_of(module: &Module) -> Result<Exports, TransformError> {
    check_exports(module)
}

/// Finds the ABI version the module is built for (the newest one it exports names of) and checks
/// that version's exports.
fn check_exports(module: &Module) -> Result<Exports, TransformError> {
    let versions: Vec<String> = module
        .exports()
        .filter_map(|e| e.name().strip_prefix(EXPORT_PREFIX))
        .filter_map(|rest| rest.split('_').next().map(str::to_string))
        .collect();
    let known = ABI_VERSIONS.iter().rev().find(|v| versions.contains(&v.to_string())).and_then(|v| exports(*v));
    let abi = match (known, versions.first()) {
        (Some(abi), _) => abi,
        (None, Some(found)) => return Err(TransformError::AbiVersion { found: found.clone(), expected: ABI_VERSION }),
        // No ABI export at all: name what a v1 module lacks first.
        (None, None) => EXPORTS_V1,
    };
    match module.get_export(EXPORT_MEMORY) {
        Some(ExternType::Memory(m)) if !m.is_64() => {}
        Some(other) => {
            return Err(TransformError::ExportType { name: EXPORT_MEMORY, found: format!("{other:?}"), expected: "a 32-bit memory" })
        }
        None => return Err(TransformError::MissingExport { name: EXPORT_MEMORY, what: "the linear memory" }),
    }
    let mut funcs: Vec<ExportCheck> = vec![
        (abi.alloc, "allocates the input buffer", &[ValType::I32], &[ValType::I32], "(i32) -> i32"),
        (abi.init, "takes the config parameters", &[ValType::I32, ValType::I32], &[ValType::I64], "(i32, i32) -> i64"),
        (abi.process, "processes a batch", &[ValType::I32, ValType::I32], &[ValType::I64], "(i32, i32) -> i64"),
    ];
    if let Some(state) = abi.state {
        funcs.push((state, "commits, aborts and restores state", &[ValType::I32, ValType::I32], &[ValType::I64], "(i32, i32) -> i64"));
    }
    for (name, what, params, results, expected) in funcs {
        match module.get_export(name) {
            Some(ExternType::Func(f)) => {
                let params_ok = f.params().map(|p| p.to_string()).eq(params.iter().map(|p| p.to_string()));
                let results_ok = f.results().map(|r| r.to_string()).eq(results.iter().map(|r| r.to_string()));
                if !params_ok || !results_ok {
                    return Err(TransformError::ExportType { name, found: f.to_string(), expected });
                }
            }
            Some(other) => return Err(TransformError::ExportType { name, found: format!("{other:?}"), expected }),
            None => return Err(TransformError::MissingExport { name, what }),
        }
    }
    Ok(abi)
}

fn check_imports(module: &Module) -> Result<(), TransformError> {
    match module.imports().find(|i| i.module() != WASI_MODULE) {
        Some(i) => Err(TransformError::ForbiddenImport { module: i.module().to_string(), name: i.name().to_string() }),
        None => Ok(()),
    }
}
