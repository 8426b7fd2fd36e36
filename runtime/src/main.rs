//! The `sluice` command.

use clap::{Parser, Subcommand};
use sluice::config::{BrokerConfig, LogFormat, ServeArgs};

#[derive(Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible streaming platform with in-broker WebAssembly transforms")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no flags: Kafka on 127.0.0.1:9092, admin HTTP on 127.0.0.1:9644,
    /// data in ./sluice-data.
    ///
    /// Examples:
    ///   sluice serve
    ///   sluice serve --kafka-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir /tmp/s1
    ///   SLUICE_DATA_DIR=/var/lib/sluice sluice serve --config sluice.yaml
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Manage SCRAM users (AlterUserScramCredentials / DescribeUserScramCredentials) on a running
    /// broker. On SASL listeners authenticate as a super-user (e.g. the bootstrap user).
    ///
    /// Examples:
    ///   SLUICE_USER_PASSWORD=pw sluice user create alice
    ///   SLUICE_ADMIN_PASSWORD=secret sluice user --bootstrap-server host:9093 \
    ///       --security-protocol SASL_SSL --ca-file ca.crt --admin-user admin list
    #[command(verbatim_doc_comment)]
    User(UserArgs),
    Get(sluice::cli::get::GetArgs),
    Describe(sluice::cli::describe::DescribeArgs),
    Topic(sluice::cli::topic::TopicArgs),
    Produce(sluice::cli::produce::ProduceArgs),
    Consume(sluice::cli::consume::ConsumeArgs),
    /// Write and try transforms (init, build, test: no broker needed) and operate deployed ones
    /// (logs, pause, resume, reset: over the admin API and the `_sluice_transform_logs` topic).
    ///
    /// Examples:
    ///   sluice transform init my-transform && cd my-transform
    ///   sluice transform build
    ///   sluice transform test --input sample-input.txt
    ///   sluice transform logs uppercase -f
    ///   sluice transform reset uppercase --to-earliest --wait
    #[command(subcommand, verbatim_doc_comment)]
    Transform(sluice::cli::transform_ops::TransformCommand),
    Apply(sluice::cli::apply::ApplyArgs),
    Diff(sluice::cli::apply::DiffArgs),
    Delete(sluice::cli::apply::DeleteArgs),
}

#[derive(clap::Args)]
struct UserArgs {
    /// host:port of a Kafka listener.
    #[arg(long, env = "SLUICE_BOOTSTRAP_SERVER", default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    /// That listener's protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, default_value = "PLAINTEXT")]
    security_protocol: String,
    /// PEM CA file that signed the broker's certificate (SSL, SASL_SSL).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// User to authenticate as (SASL/PLAIN) on SASL listeners.
    #[arg(long, env = "SLUICE_ADMIN_USER")]
    admin_user: Option<String>,
    /// Its password. Prefer the environment variable (flags show in `ps`).
    #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user (or replace its password).
    #[command(
        after_help = "Examples:\n  SLUICE_USER_PASSWORD=s3cret sluice user create alice\n  SLUICE_USER_PASSWORD=s3cret sluice user create alice --mechanism SCRAM-SHA-256 --iterations 8192"
    )]
    Create {
        name: String,
        /// The new user's password. Prefer the environment variable.
        #[arg(long, env = "SLUICE_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Mechanisms to create credentials for.
        #[arg(long, value_delimiter = ',', default_value = "SCRAM-SHA-512,SCRAM-SHA-256")]
        mechanism: Vec<String>,
        /// PBKDF2 iterations (4096..=16384).
        #[arg(long, default_value_t = sluice::cli::user::ITERATIONS_DEFAULT)]
        iterations: i32,
    },
    /// Delete a user's credentials.
    #[command(after_help = "Examples:\n  sluice user delete alice\n  sluice user delete alice --mechanism SCRAM-SHA-256")]
    Delete {
        name: String,
        /// Mechanisms to delete.
        #[arg(long, value_delimiter = ',', default_value = "SCRAM-SHA-512,SCRAM-SHA-256")]
        mechanism: Vec<String>,
    },
    /// List users and their mechanisms.
    #[command(
        after_help = "Examples:\n  sluice user list\n  SLUICE_ADMIN_PASSWORD=secret sluice user --bootstrap-server broker:9093 --security-protocol SASL_SSL --ca-file ca.crt --admin-user admin list"
    )]
    List,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::User(args) => user(args),
        Command::Get(args) => sluice::cli::get::main(args),
        Command::Describe(args) => sluice::cli::describe::main(args),
        Command::Topic(args) => sluice::cli::topic::main(args),
        Command::Produce(args) => sluice::cli::produce::main(args),
        Command::Consume(args) => sluice::cli::consume::main(args),
        Command::Transform(command) => sluice::cli::transform_ops::main(command),
        Command::Apply(args) => sluice::cli::apply::main_apply(args),
        Command::Diff(args) => sluice::cli::apply::main_diff(args),
        Command::Delete(args) => sluice::cli::apply::main_delete(args),
    }
}

fn user(args: UserArgs) -> std::process::ExitCode {
    match user_command(args) {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice user: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn user_command(args: UserArgs) -> anyhow::Result<String> {
    use sluice::cli::kafka_client::ConnectOptions;
    use sluice::cli::user::{run, validate_iterations, UserCommand};
    use sluice::config::SecurityProtocol;
    use sluice::security::ScramMechanism;
    let protocol = SecurityProtocol::parse(&args.security_protocol).ok_or_else(|| {
        anyhow::anyhow!("--security-protocol {:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", args.security_protocol)
    })?;
    let mechanisms = |names: &[String]| -> anyhow::Result<Vec<ScramMechanism>> {
        names
            .iter()
            .map(|n| ScramMechanism::from_name(n).ok_or_else(|| anyhow::anyhow!("--mechanism {n:?} is not SCRAM-SHA-256 or SCRAM-SHA-512")))
            .collect()
    };
    let command = match args.action {
        UserAction::Create { name, password, mechanism, iterations } => {
            if password.is_empty() {
                anyhow::bail!("the password is empty");
            }
            UserCommand::Create { user: name, password, mechanisms: mechanisms(&mechanism)?, iterations: validate_iterations(iterations)? }
        }
        UserAction::Delete { name, mechanism } => UserCommand::Delete { user: name, mechanisms: mechanisms(&mechanism)? },
        UserAction::List => UserCommand::List,
    };
    let sasl = match (args.admin_user, args.admin_password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        _ => anyhow::bail!("--admin-user and SLUICE_ADMIN_PASSWORD go together"),
    };
    let options = ConnectOptions { bootstrap: args.bootstrap_server, protocol, ca_file: args.ca_file, sasl };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(&options, command))
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
    let data_dir = config.data_dir.clone();
    let result = runtime.block_on(sluice::serve::run(config, |addrs| {
        // One line on stdout that scripts and tests parse to find the bound ports.
        // `kafka=` is the first listener; `listeners=` names every one as NAME://addr;
        // `data_dir=` (last, as a path may hold spaces) is the absolute data directory.
        let listeners: Vec<String> = addrs.listeners.iter().map(|l| format!("{}://{}", l.name, l.addr)).collect();
        println!(
            "sluice ready kafka={} admin={} advertised={} listeners={} data_dir={}",
            addrs.kafka,
            addrs.admin,
            addrs.advertised,
            listeners.join(","),
            data_dir.display()
        );
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
