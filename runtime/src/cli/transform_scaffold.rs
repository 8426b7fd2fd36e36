//! `sluice transform init NAME`: writes a transform crate that builds for wasm32-wasip1 and passes
//! its own unit tests as written, so a user starts from working code rather than a blank page.
//!
//! The crate depends on the SDK by path. Sluice is not on crates.io yet, so the path is where the
//! SDK sits in this source tree (found at build time, overridable with `--sdk-path` or
//! `SLUICE_SDK_PATH`); once the SDK is published the dependency becomes a version.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The SDK directory of the source tree this binary was built from.
const SDK_PATH_BUILT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// Environment variable naming the SDK directory.
pub const SDK_PATH_ENV: &str = "SLUICE_SDK_PATH";

/// The SDK directory to depend on: `explicit`, else `SLUICE_SDK_PATH`, else the build tree's;
/// checked to be the SDK (its Cargo.toml names `sluice-sdk`) and made absolute.
pub fn find_sdk(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidate = match (explicit, std::env::var_os(SDK_PATH_ENV)) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(env)) => PathBuf::from(env),
        (None, None) => PathBuf::from(SDK_PATH_BUILT),
    };
    let manifest = candidate.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "cannot find the Sluice SDK at {} (set --sdk-path or {SDK_PATH_ENV} to the sdk/ directory of a Sluice checkout)",
            candidate.display()
        )
    })?;
    if !text.contains("name = \"sluice-sdk\"") {
        bail!("{} is not the Sluice SDK's manifest (no `name = \"sluice-sdk\"`)", manifest.display());
    }
    candidate.canonicalize().with_context(|| format!("cannot resolve {}", candidate.display()))
}

/// A crate name cargo and Sluice both accept: ASCII letters, digits, `-` and `_`, starting with
/// a letter, at most 64 characters (it also names the deployed transform).
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !first_ok || !rest_ok || name.len() > 64 {
        bail!("{name:?} is not a valid transform name: use letters, digits, '-' and '_', starting with a letter, at most 64 characters");
    }
    Ok(())
}

/// Writes the crate `parent/name`; refuses to overwrite an existing directory. Returns its path.
pub fn init(name: &str, parent: &Path, sdk: &Path) -> anyhow::Result<PathBuf> {
    validate_name(name)?;
    // `./name` reads worse than `name` in the message and the next-step hint.
    let dir = if parent == Path::new(".") { PathBuf::from(name) } else { parent.join(name) };
    if dir.exists() {
        bail!("{} already exists; choose another name or remove it", dir.display());
    }
    let files: [(&str, String); 5] = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        ("src/lib.rs", LIB_RS.to_string()),
        ("sample-input.txt", SAMPLE_INPUT.to_string()),
        ("README.md", readme(name)),
        (".gitignore", "/target\n".to_string()),
    ];
    for (relative, contents) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    // A TOML literal string ('…') takes the path as written, backslashes included.
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
# cdylib: the wasm module Sluice runs; rlib: `cargo test` runs the same code natively.
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-sdk = {{ path = '{sdk}' }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
# Small modules compile and instantiate faster; a panic aborts (the broker sees a trap and applies
# the transform's error policy).
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# A workspace of its own, so the crate builds wherever it is created.
[workspace]
"#,
        sdk = sdk.display()
    )
}

const LIB_RS: &str = r#"//! A Sluice transform: upper-cases each record's value and copies records that contain an alert
//! word to an alerts topic. Edit `process`, run `cargo test`, then `sluice transform build` and
//! `sluice transform test --input sample-input.txt`.

use serde::Deserialize;
use sluice_sdk::{info, transform, Output, Record, Result};

/// Config parameters, from the transform's `config` in the manifest (a JSON object).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Records whose value contains this word are copied to `alerts_topic`.
    pub alert_word: String,
    /// Where alerts go.
    pub alerts_topic: String,
}

impl Default for Config {
    fn default() -> Self {
        Config { alert_word: "ERROR".into(), alerts_topic: "alerts".into() }
    }
}

/// Called once per input record; emits zero, one or many output records.
pub fn process(record: &Record, out: &mut Output, config: &Config) -> Result {
    let text = record.value_str();
    out.emit(text.to_uppercase());
    if text.contains(config.alert_word.as_str()) {
        info!("alert: {text}");
        out.emit_to(&config.alerts_topic, record.value());
    }
    Ok(())
}

transform!(process, Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_every_record() {
        let mut out = Output::new();
        process(&Record::new(b"hello"), &mut out, &Config::default()).unwrap();
        assert_eq!(out.values(), ["HELLO"]);
    }

    #[test]
    fn copies_alerts_to_the_alerts_topic() {
        let mut out = Output::new();
        process(&Record::new(b"disk ERROR"), &mut out, &Config::default()).unwrap();
        let records = out.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].topic.as_deref(), Some("alerts"));
        assert_eq!(records[1].value.as_deref(), Some(&b"disk ERROR"[..]));
    }
}
"#;

const SAMPLE_INPUT: &str = "service started\ndisk ERROR: 98% full\nrequest served in 12 ms\n";

fn readme(name: &str) -> String {
    format!(
        r#"# {name}

A Sluice transform. The loop:

```sh
cargo test                                   # unit tests, natively, no broker
sluice transform build                       # → target/wasm32-wasip1/release/{module}.wasm
sluice transform test --input sample-input.txt   # runs the wasm locally on sample records
```

Then declare it in a manifest (a `Transform` with `wasm:` pointing at the built module, an input
topic and output topics) and deploy it with `sluice apply -f`.
"#,
        module = name.replace('-', "_")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_crate_rules() {
        assert!(validate_name("my-transform_2").is_ok());
        for bad in ["", "2fast", "with space", "dot.ted", "ü", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn init_writes_the_crate_and_refuses_to_overwrite() {
        let parent = std::env::temp_dir().join(format!("sluice-scaffold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(&parent).unwrap();
        let sdk = find_sdk(None).unwrap();
        let dir = init("demo", &parent, &sdk).unwrap();
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains(&format!("sluice-sdk = {{ path = '{}' }}", sdk.display())));
        assert!(dir.join("src/lib.rs").is_file() && dir.join("sample-input.txt").is_file());
        let again = init("demo", &parent, &sdk).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        std::fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_directory_without_the_sdk_is_refused() {
        let err = find_sdk(Some(Path::new("/nonexistent/sdk"))).unwrap_err().to_string();
        assert!(err.contains("cannot find the Sluice SDK"), "{err}");
    }
}
