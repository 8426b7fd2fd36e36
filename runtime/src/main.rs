//! The `sluice` command.

use clap::{Parser, Subcommand};
use sluice::config::{BrokerConfig, LogFormat, ServeArgs};

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible streaming platform with in-broker WebAssembly transforms")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: Kafka on 127.0.0.1:9092, admin HTTP on 127.0.0.1:9644,
    /// data in ./sluice-data.
    ///
    /// Examples:
    ///   sluice serve
    ///   sluice serve --kafka-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir /tmp/s1
    ///   SLUICE_DATA_DIR=/var/lib/sluice sluice serve --config sluice.yaml
    Serve(ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> std::process::ExitCode {
    let config = match BrokerConfig::resolve(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sluice: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(sluice::serve::run(config, |addrs| {
        // One line on stdout that scripts and tests parse to find the bound ports.
        println!("sluice ready kafka={} admin={} advertised={}", addrs.kafka, addrs.admin, addrs.advertised);
    }));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` filters (`info`, `sluice=debug,warn`, …; default `info`); `--log-format json` writes
/// one JSON object per line, with the current request span's fields (api, correlation id, client
/// id) attached.
fn init_tracing(format: LogFormat) {
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(e) => {
            if std::env::var_os("RUST_LOG").is_some() {
                eprintln!("sluice: ignoring RUST_LOG ({e}); logging at info");
            }
            tracing_subscriber::EnvFilter::new("info")
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).init(),
    }
}
