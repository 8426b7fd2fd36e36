//! `sluice transform build`: `cargo build --release --target wasm32-wasip1` for a transform crate,
//! with one clear line when the target is not installed (cargo's own error is a page about
//! `core` not being found), and the path of the built module.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The target transforms are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The `cargo` to run: `$CARGO` when set (inside `cargo run`), else from `PATH`.
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Fails with the command to run when rustup reports the wasm target missing. A toolchain without
/// rustup is left to cargo to judge.
fn check_target_installed() -> anyhow::Result<()> {
    let Ok(listed) = Command::new("rustup").args(["target", "list", "--installed"]).output() else { return Ok(()) };
    if !listed.status.success() {
        return Ok(());
    }
    if !String::from_utf8_lossy(&listed.stdout).lines().any(|l| l.trim() == WASM_TARGET) {
        bail!("the {WASM_TARGET} target is not installed; run: rustup target add {WASM_TARGET}");
    }
    Ok(())
}

/// Builds the crate whose manifest is `manifest` and returns the module's path. Cargo's output
/// goes to this process's stderr.
pub fn build(manifest: &Path) -> anyhow::Result<PathBuf> {
    if !manifest.is_file() {
        bail!("{} not found; run this in a transform crate or pass --path", manifest.display());
    }
    check_target_installed()?;
    let status = cargo()
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(manifest)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    module_path(manifest)
}

/// Where cargo puts the crate's module: `<target dir>/wasm32-wasip1/release/<lib name>.wasm`,
/// with the target directory and library name from `cargo metadata` (they honour
/// `CARGO_TARGET_DIR`, workspaces and `[lib] name`).
pub fn module_path(manifest: &Path) -> anyhow::Result<PathBuf> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(manifest)
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout).context("cannot read cargo metadata's output")?;
    let wanted = manifest.canonicalize().with_context(|| format!("cannot resolve {}", manifest.display()))?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path.canonicalize().is_ok_and(|p| p == wanted))
        .or(metadata.packages.first())
        .context("cargo metadata lists no package")?;
    let Some(lib) = package.targets.iter().find(|t| t.kind.iter().any(|k| k == "cdylib")) else {
        bail!("{} has no cdylib target; add `[lib] crate-type = [\"cdylib\", \"rlib\"]`", manifest.display());
    };
    Ok(metadata.target_directory.join(WASM_TARGET).join("release").join(format!("{}.wasm", lib.name.replace('-', "_"))))
}

/// The parts of `cargo metadata` used here.
#[derive(serde::Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(serde::Deserialize)]
struct Package {
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(serde::Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}
