//! Arguments every broker-facing command shares, and the one way commands run and fail: an
//! async body on a current-thread runtime, `sluice <command>: <one line>` on stderr and exit
//! code 1 on error.

use std::process::ExitCode;

use clap::Args;

use super::admin_client::{AdminClient, ADMIN_URL_DEFAULT};
use super::kafka_client::{ConnectOptions, KafkaClient};
use crate::config::SecurityProtocol;

/// Where the admin HTTP API is.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Base URL of the broker's admin HTTP API.
    #[arg(long = "admin", env = "SLUICE_ADMIN", default_value = ADMIN_URL_DEFAULT, value_name = "URL", global = true)]
    pub admin_url: String,
    /// User for HTTP Basic authentication, when the admin API requires it.
    #[arg(long, env = "SLUICE_ADMIN_USER", global = true)]
    pub admin_user: Option<String>,
    /// Its password. Prefer the environment variable (flags show in `ps`).
    #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true, global = true)]
    pub admin_password: Option<String>,
}

impl AdminArgs {
    /// A client for that URL (with Basic credentials if given).
    pub fn client(&self) -> anyhow::Result<AdminClient> {
        let client = AdminClient::new(&self.admin_url)?;
        match (&self.admin_user, &self.admin_password) {
            (Some(user), Some(password)) => Ok(client.with_basic_auth(user, password)),
            (None, None) => Ok(client),
            _ => anyhow::bail!("--admin-user and SLUICE_ADMIN_PASSWORD go together"),
        }
    }
}

/// How to reach a Kafka listener (the same flags as `sluice user`).
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// host:port of a Kafka listener.
    #[arg(long, env = "SLUICE_BOOTSTRAP_SERVER", default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// That listener's protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long, default_value = "PLAINTEXT")]
    pub security_protocol: String,
    /// PEM CA file that signed the broker's certificate (SSL, SASL_SSL).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// User to authenticate as (SASL/PLAIN) on SASL listeners.
    #[arg(long, env = "SLUICE_USER")]
    pub user: Option<String>,
    /// Its password. Prefer the environment variable (flags show in `ps`).
    #[arg(long, env = "SLUICE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl KafkaArgs {
    /// Connects (TLS and SASL as the flags say).
    pub async fn connect(&self) -> anyhow::Result<KafkaClient> {
        let protocol = SecurityProtocol::parse(&self.security_protocol).ok_or_else(|| {
            anyhow::anyhow!("--security-protocol {:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", self.security_protocol)
        })?;
        let sasl = match (&self.user, &self.password) {
            (Some(user), Some(password)) => Some((user.clone(), password.clone())),
            (None, None) => None,
            _ => anyhow::bail!("--user and SLUICE_PASSWORD go together"),
        };
        let options = ConnectOptions { bootstrap: self.bootstrap_server.clone(), protocol, ca_file: self.ca_file.clone(), sasl };
        KafkaClient::connect(&options).await
    }
}

/// Runs `body` on a current-thread runtime; an error is one line on stderr and exit code 1.
pub fn run<F>(command: &str, body: F) -> ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice {command}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` joins the context chain with ": " on one line.
            eprintln!("sluice {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout, treating a closed pipe (`sluice consume … | head`) as a normal end.
pub fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
    }
}
