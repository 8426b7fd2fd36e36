//! `sluice transform init|build|test`: the loop of writing a transform, before any broker is
//! involved. Each command's work lives in its own module (`transform_scaffold`,
//! `transform_build`, `transform_local`); this one holds the flags and prints the results.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::transform_local::{InputFormat, LocalRun, OutputFormat};
use crate::transform::instance::GuestLimits;

/// The development commands.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Create a transform crate that builds for wasm32-wasip1 and passes its own tests.
    ///
    /// Examples:
    ///   sluice transform init my-transform
    ///   sluice transform init alerts --dir ~/transforms
    #[command(verbatim_doc_comment)]
    Init {
        /// Crate and transform name (letters, digits, '-', '_').
        name: String,
        /// Directory to create it in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The Sluice SDK directory to depend on (default: the one this binary was built with).
        #[arg(long, env = "SLUICE_SDK_PATH")]
        sdk_path: Option<PathBuf>,
    },
    /// Build the transform crate for wasm32-wasip1 and print the module's path.
    ///
    /// Examples:
    ///   sluice transform build
    ///   sluice transform build --path ~/transforms/alerts
    #[command(verbatim_doc_comment)]
    Build {
        /// The crate's directory.
        #[arg(long, default_value = ".")]
        path: PathBuf,
    },
    /// Run the transform's module on sample records locally (no broker) and print its outputs;
    /// logs and per-record errors go to stderr. Exit 1 if any record failed.
    ///
    /// Examples:
    ///   sluice transform test --input sample-input.txt
    ///   printf 'user1:hello\n' | sluice transform test --input - --key-sep :
    ///   sluice transform test --wasm m.wasm --input records.jsonl --format jsonl --config '{"word":"x"}'
    #[command(verbatim_doc_comment)]
    Test {
        /// Sample records: a file, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        /// The module (default: the crate at --path, built with `sluice transform build`).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// The crate's directory, used when --wasm is not given.
        #[arg(long, default_value = ".")]
        path: PathBuf,
        /// How the input is laid out.
        #[arg(long, value_enum, default_value = "lines")]
        format: InputFormat,
        /// In `lines` input, the text between key and value.
        #[arg(long)]
        key_sep: Option<String>,
        /// The transform's config parameters, as a JSON object.
        #[arg(long, default_value = "{}")]
        config: String,
        /// How outputs are printed.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
        /// Guest memory limit in bytes.
        #[arg(long, default_value_t = GuestLimits::default().memory_bytes)]
        memory_bytes: u64,
        /// Time limit per batch in milliseconds.
        #[arg(long, default_value_t = GuestLimits::default().batch_time_ms)]
        batch_time_ms: u64,
    },
}

/// Runs one command; errors print as one line and exit 1.
pub fn run(command: DevCommand) -> ExitCode {
    match execute(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice transform: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: DevCommand) -> anyhow::Result<ExitCode> {
    match command {
        DevCommand::Init { name, dir, sdk_path } => {
            let sdk = super::transform_scaffold::find_sdk(sdk_path.as_deref())?;
            let created = super::transform_scaffold::init(&name, &dir, &sdk)?;
            println!("created {}", created.display());
            println!(
                "next: cd {} && cargo test && sluice transform build && sluice transform test --input sample-input.txt",
                created.display()
            );
        }
        DevCommand::Build { path } => {
            let module = super::transform_build::build(&path.join("Cargo.toml"))?;
            println!("{}", module.display());
        }
        DevCommand::Test { input, wasm, path, format, key_sep, config, output, memory_bytes, batch_time_ms } => {
            let wasm_path = match wasm {
                Some(p) => p,
                None => super::transform_build::module_path(&path.join("Cargo.toml"))?,
            };
            let wasm = std::fs::read(&wasm_path)
                .with_context(|| format!("cannot read the module {} (build it with `sluice transform build`)", wasm_path.display()))?;
            let input = read_input(&input)?;
            let config_value: serde_json::Value = serde_json::from_str(&config).context("--config is not JSON")?;
            if !config_value.is_object() {
                anyhow::bail!("--config must be a JSON object");
            }
            let job = LocalRun {
                wasm: &wasm,
                input: &input,
                input_format: format,
                key_sep: key_sep.as_deref(),
                config_json: config.as_bytes(),
                limits: GuestLimits { memory_bytes, batch_time_ms },
                output_format: output,
            };
            let failed = super::transform_local::run(&job, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?;
            if failed > 0 {
                eprintln!("sluice transform: {failed} record(s) failed");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).context("cannot read stdin")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
