//! Broker configuration: command-line flags, then `SLUICE_*` environment variables, then an
//! optional YAML file (`--config`), then built-in defaults — in that order of precedence.
//!
//! The YAML file uses the flag names in snake_case (`kafka_addr: 127.0.0.1:9092`). Its types are
//! converted here, at the edge; the rest of the broker only sees [`BrokerConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod security;

use crate::security::sasl::Mechanism;
use crate::security::Principal;
pub use security::{ClientAuth, ListenerConfig, SecurityProtocol, TlsConfig};

/// Defaults for a broker started with no flags at all.
pub mod defaults {
    /// Default Kafka listener.
    pub const KAFKA_ADDR: &str = "127.0.0.1:9092";
    /// Default admin HTTP listener.
    pub const ADMIN_ADDR: &str = "127.0.0.1:9644";
    /// Default data directory.
    pub const DATA_DIR: &str = "./sluice-data";
    /// Default node id.
    pub const NODE_ID: i32 = 0;
    /// Kafka's `socket.request.max.bytes`.
    pub const MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;
    /// Default connection limit.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// Requests decoded and running per connection before the reader waits for responses to drain.
    pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 32;
    /// Default partitions of an auto-created topic.
    pub const NUM_PARTITIONS: i32 = 1;
    /// WebAssembly instances alive at once (one per running input partition per transform).
    /// Each pool slot reserves address space (not RAM) up front, about 4 GiB on 64-bit hosts.
    pub const TRANSFORM_INSTANCES_MAX: u32 = 512;
    /// Kafka's default `segment.bytes`.
    pub const SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;
    /// Kafka's default `segment.ms`.
    pub const SEGMENT_MS: u64 = 7 * 24 * 3600 * 1000;
    /// Kafka's default `retention.ms`.
    pub const RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
    /// Default maintenance interval.
    pub const LOG_MAINTENANCE_INTERVAL_MS: u64 = 30_000;
    /// Kafka's default `group.initial.rebalance.delay.ms`.
    pub const GROUP_INITIAL_REBALANCE_DELAY_MS: u64 = 3_000;
    /// Label sets one per-topic, per-partition or per-group metric family may show in a scrape
    /// (see `metrics`): the bound on series that scale with topics, partitions and groups.
    pub const METRICS_SERIES_PER_FAMILY_MAX: usize = 10_000;
    /// Memory for chunks of remote segments read back from the object store.
    pub const REMOTE_CACHE_BYTES: u64 = 256 * 1024 * 1024;
    /// Connections from one IP address at once; more are closed at accept. Kafka's
    /// `max.connections.per.ip` is unbounded by default; a bound keeps one host from taking all.
    pub const MAX_CONNECTIONS_PER_IP: usize = 1_000;
    /// A connection with no request in flight and nothing received for this long is closed
    /// (Kafka's `connections.max.idle.ms`).
    pub const CONNECTION_IDLE_TIMEOUT_MS: u64 = 600_000;
    /// A client must finish the TLS handshake and SASL authentication within this time.
    pub const SASL_AUTH_TIMEOUT_MS: u64 = 10_000;
}

/// The command-line and environment layer. Every field is optional so the file and the defaults
/// can fill what is missing.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// YAML file with any of the settings below (snake_case keys).
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka listener address; port 0 picks a free port. [default: 127.0.0.1:9092]
    #[arg(long, env = "SLUICE_KAFKA_ADDR")]
    pub kafka_addr: Option<SocketAddr>,
    /// Admin HTTP address (health, metrics, cluster info); port 0 picks a free port.
    /// [default: 127.0.0.1:9644]
    #[arg(long, env = "SLUICE_ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    /// Directory holding partition logs and broker metadata. [default: ./sluice-data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Object store URL for tiered segments (file://, s3://, gs://, az://, memory://).
    /// [default: file://<data-dir>/tier]
    #[arg(long, env = "SLUICE_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// host:port that clients are told to connect to. [default: the bound Kafka address]
    #[arg(long, env = "SLUICE_ADVERTISED_ADDR")]
    pub advertised_addr: Option<String>,
    /// This broker's node id. [default: 0]
    #[arg(long, env = "SLUICE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Create unknown topics on Metadata/Produce, like Kafka's auto.create.topics.enable.
    /// [default: true]
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic. [default: 1]
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// WebAssembly instances alive at once over all transforms (one per running input
    /// partition); each reserves ~4 GiB of address space, not RAM. Lower it where address space
    /// is scarce (valgrind, some containers). [default: 512]
    #[arg(long, env = "SLUICE_TRANSFORM_INSTANCES_MAX")]
    pub transform_instances_max: Option<u32>,
    /// Largest request frame accepted, in bytes. [default: 104857600]
    #[arg(long, env = "SLUICE_MAX_FRAME_BYTES")]
    pub max_frame_bytes: Option<usize>,
    /// Log output format: text or json. [default: text]
    #[arg(long, env = "SLUICE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// How often retention, compaction and age-based rolling run, in ms. [default: 30000]
    #[arg(long, env = "SLUICE_LOG_MAINTENANCE_INTERVAL_MS")]
    pub log_maintenance_interval_ms: Option<u64>,
    /// Kafka's group.initial.rebalance.delay.ms: how long a new group waits for more members
    /// before its first rebalance completes. [default: 3000]
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Serve Prometheus metrics on the admin port's /metrics and count requests. false turns
    /// the hot-path bookkeeping off (for benchmarks). [default: true]
    #[arg(long, env = "SLUICE_METRICS")]
    pub metrics: Option<bool>,
    /// Most label sets (topics, partitions or groups) one metric family shows per scrape; the
    /// rest are left out and counted in sluice_metrics_series_omitted. [default: 10000]
    #[arg(long, env = "SLUICE_METRICS_SERIES_PER_FAMILY_MAX")]
    pub metrics_series_per_family_max: Option<usize>,
    /// Bytes of memory for the read cache of tiered (remote) segments. [default: 268435456]
    #[arg(long, env = "SLUICE_REMOTE_CACHE_BYTES")]
    pub remote_cache_bytes: Option<u64>,
    /// A Kafka listener `NAME=PROTOCOL://HOST:PORT` (PROTOCOL: PLAINTEXT, SSL, SASL_PLAINTEXT,
    /// SASL_SSL); repeat for several. Replaces the file's `listeners`. `--kafka-addr` sets the
    /// first one's address. [default: PLAINTEXT=PLAINTEXT://127.0.0.1:9092]
    #[arg(long = "listener", env = "SLUICE_LISTENERS", value_delimiter = ',')]
    pub listeners: Vec<String>,
    /// PEM server certificate (chain) for SSL and SASL_SSL listeners.
    #[arg(long, env = "SLUICE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the server certificate.
    #[arg(long, env = "SLUICE_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM CA certificates trusted to sign client certificates.
    #[arg(long, env = "SLUICE_TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Client certificates: none, requested or required. [default: none]
    #[arg(long, env = "SLUICE_TLS_CLIENT_AUTH")]
    pub tls_client_auth: Option<ClientAuth>,
    /// SASL mechanisms offered on SASL listeners. [default: SCRAM-SHA-512,SCRAM-SHA-256,PLAIN]
    #[arg(long, env = "SLUICE_SASL_MECHANISMS", value_delimiter = ',')]
    pub sasl_mechanisms: Vec<String>,
    /// A user created (both SCRAM mechanisms) at start if it does not exist yet, and made a
    /// super-user, so a fresh SASL-only broker is usable. Needs the password too.
    #[arg(long, env = "SLUICE_SASL_BOOTSTRAP_USER")]
    pub sasl_bootstrap_user: Option<String>,
    /// The bootstrap user's password. Prefer the environment variable (flags show in `ps`).
    #[arg(long, env = "SLUICE_SASL_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub sasl_bootstrap_password: Option<String>,
    /// Principals allowed every operation, e.g. `User:admin` (comma-separated).
    #[arg(long, env = "SLUICE_SUPER_USERS", value_delimiter = ',')]
    pub super_users: Vec<String>,
    /// Enforce ACLs (Kafka's authorizer.class.name): CreateAcls/DescribeAcls/DeleteAcls work and
    /// every request is checked. Off, every client may do everything except manage users on a
    /// SASL broker. [default: false]
    #[arg(long, env = "SLUICE_AUTHORIZER", num_args = 0..=1, default_missing_value = "true")]
    pub authorizer: Option<bool>,
    /// With the authorizer on, allow any request on a resource that no ACL names (Kafka's
    /// allow.everyone.if.no.acl.found). [default: false]
    #[arg(long, env = "SLUICE_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    pub allow_everyone_if_no_acl_found: Option<bool>,
    /// Serve /metrics without authentication even when the admin API requires it (so
    /// Prometheus scrapes keep working). [default: true]
    #[arg(long, env = "SLUICE_ADMIN_METRICS_PUBLIC")]
    pub admin_metrics_public: Option<bool>,
    /// Serve the admin API over HTTPS with the `tls` certificate and key. [default: false]
    #[arg(long, env = "SLUICE_ADMIN_TLS", num_args = 0..=1, default_missing_value = "true")]
    pub admin_tls: Option<bool>,
    /// Connections served at once, all listeners together. [default: 10000]
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connections from one IP address at once. [default: 1000]
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Requests of one connection decoded and running at once; past it the broker reads no more
    /// of that connection until responses go out. [default: 32]
    #[arg(long, env = "SLUICE_MAX_IN_FLIGHT_PER_CONNECTION")]
    pub max_in_flight_per_connection: Option<usize>,
    /// Close connections idle this long, in ms. [default: 600000]
    #[arg(long, env = "SLUICE_CONNECTION_IDLE_TIMEOUT_MS")]
    pub connection_idle_timeout_ms: Option<u64>,
    /// Time allowed for the TLS handshake plus SASL authentication, in ms. [default: 10000]
    #[arg(long, env = "SLUICE_SASL_AUTH_TIMEOUT_MS")]
    pub sasl_auth_timeout_ms: Option<u64>,
}

/// How `tracing` output is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    /// Human-readable lines.
    Text,
    /// One JSON object per line (with the current span).
    Json,
}

/// The YAML file layer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    kafka_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    object_store: Option<String>,
    advertised_addr: Option<String>,
    node_id: Option<i32>,
    auto_create_topics: Option<bool>,
    num_partitions: Option<i32>,
    transform_instances_max: Option<u32>,
    max_frame_bytes: Option<usize>,
    log_format: Option<LogFormat>,
    log_maintenance_interval_ms: Option<u64>,
    group_initial_rebalance_delay_ms: Option<u64>,
    metrics: Option<bool>,
    metrics_series_per_family_max: Option<usize>,
    remote_cache_bytes: Option<u64>,
    listeners: Option<Vec<ListenerConfig>>,
    tls: Option<TlsConfig>,
    sasl_mechanisms: Option<Vec<String>>,
    sasl_bootstrap_user: Option<String>,
    sasl_bootstrap_password: Option<String>,
    super_users: Option<Vec<String>>,
    authorizer: Option<bool>,
    allow_everyone_if_no_acl_found: Option<bool>,
    admin_metrics_public: Option<bool>,
    admin_tls: Option<bool>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_in_flight_per_connection: Option<usize>,
    connection_idle_timeout_ms: Option<u64>,
    sasl_auth_timeout_ms: Option<u64>,
}

/// Everything the broker needs to start, fully resolved.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// This broker's node id (Kafka's `node.id`).
    pub node_id: i32,
    /// The first listener's address (kept for callers that know one listener).
    pub kafka_addr: SocketAddr,
    /// Every Kafka listener, the first one is the one `kafka=` reports.
    pub listeners: Vec<ListenerConfig>,
    /// Certificates for SSL/SASL_SSL listeners.
    pub tls: Option<TlsConfig>,
    /// Mechanisms offered on SASL listeners.
    pub sasl_mechanisms: Vec<Mechanism>,
    /// `(user, password)` created at start if missing.
    pub sasl_bootstrap: Option<(String, String)>,
    /// Principals allowed every operation (the bootstrap user is one).
    pub super_users: Vec<Principal>,
    /// Enforce ACLs (see `protocol::authorize`).
    pub authorizer: bool,
    /// With the authorizer on: allow requests on resources no ACL names.
    pub allow_everyone_if_no_acl_found: bool,
    /// `/metrics` needs no credentials even when the admin API does.
    pub admin_metrics_public: bool,
    /// Serve the admin API over TLS (the `tls` files).
    pub admin_tls: bool,
    /// Connections from one IP address at once (more are closed at accept).
    pub max_connections_per_ip: usize,
    /// Close a connection with nothing in flight and nothing received for this long.
    pub connection_idle_timeout_ms: u64,
    /// Deadline for the TLS handshake and for SASL authentication, each from its start.
    pub sasl_auth_timeout_ms: u64,
    /// The admin HTTP listener.
    pub admin_addr: SocketAddr,
    /// `None`: advertise the address the Kafka listener actually bound.
    pub advertised_addr: Option<String>,
    /// Where partition logs and broker state live.
    pub data_dir: PathBuf,
    /// The object store URL for tiered segments.
    pub object_store: String,
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic.
    pub num_partitions: i32,
    /// WebAssembly instances alive at once (the transform engine's pool size).
    pub transform_instances_max: u32,
    /// Largest request frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Most connections open at once, over every listener.
    pub max_connections: usize,
    /// Requests of one connection processed concurrently.
    pub max_in_flight_per_connection: usize,
    /// How often retention, compaction, rolls and interval flushes run.
    pub log_maintenance_interval_ms: u64,
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay_ms: u64,
    /// Read cache for tiered segments, in bytes.
    pub remote_cache_bytes: u64,
    /// How `tracing` output is rendered.
    pub log_format: LogFormat,
    /// Serve /metrics and count requests (hot-path bookkeeping).
    pub metrics: bool,
    /// Label sets per topic/partition/group metric family in one scrape.
    pub metrics_series_per_family_max: usize,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `--config` file could not be read.
    #[error("cannot read config file {path}: {source}")]
    #[allow(missing_docs)]
    Read { path: PathBuf, source: std::io::Error },
    /// The `--config` file is not valid YAML for our keys (the message names line and column).
    #[error("config file {path}: {source}")]
    #[allow(missing_docs)]
    Parse { path: PathBuf, source: serde_yaml::Error },
    /// A value that parsed but cannot be used.
    #[error("{field}: {reason}")]
    #[allow(missing_docs)]
    Invalid { field: &'static str, reason: String },
}

impl BrokerConfig {
    /// Resolves flags and environment (`args`) over the optional file over the defaults.
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let parse_addr = |s: &str| -> SocketAddr {
            // Programmer error if a built-in default does not parse; covered by a unit test.
            s.parse().unwrap_or_else(|_| panic!("built-in default address {s} must parse"))
        };
        let tls = resolve_tls(&args, file.tls)?;
        let data_dir = absolute_data_dir(args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(defaults::DATA_DIR)))?;
        let object_store = args.object_store.or(file.object_store).unwrap_or_else(|| default_object_store(&data_dir));
        let mut listeners = if !args.listeners.is_empty() {
            args.listeners.iter().map(|l| ListenerConfig::parse_flag(l)).collect::<Result<Vec<_>, _>>()?
        } else {
            file.listeners.unwrap_or_else(|| vec![ListenerConfig::plaintext(parse_addr(defaults::KAFKA_ADDR))])
        };
        if let (Some(addr), Some(first)) = (args.kafka_addr.or(file.kafka_addr), listeners.first_mut()) {
            first.addr = addr;
        }
        let kafka_addr = listeners.first().map(|l| l.addr).unwrap_or_else(|| parse_addr(defaults::KAFKA_ADDR));
        let mechanisms = if !args.sasl_mechanisms.is_empty() { Some(args.sasl_mechanisms.clone()) } else { file.sasl_mechanisms };
        let sasl_mechanisms = match mechanisms {
            Some(names) => security::parse_mechanisms(&names)?,
            None => Mechanism::ALL.to_vec(),
        };
        let sasl_bootstrap =
            match (args.sasl_bootstrap_user.or(file.sasl_bootstrap_user), args.sasl_bootstrap_password.or(file.sasl_bootstrap_password)) {
                (Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => Some((user, password)),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::Invalid {
                        field: "sasl_bootstrap_user",
                        reason: "needs both a user and a non-empty password (SLUICE_SASL_BOOTSTRAP_PASSWORD)".into(),
                    })
                }
            };
        let super_user_names = if !args.super_users.is_empty() { args.super_users.clone() } else { file.super_users.unwrap_or_default() };
        let mut super_users = super_user_names
            .iter()
            .map(|p| {
                Principal::parse(p).ok_or_else(|| ConfigError::Invalid { field: "super_users", reason: format!("{p:?} is not Type:name") })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some((user, _)) = &sasl_bootstrap {
            super_users.push(Principal::user(user.clone()));
        }
        security::validate(&listeners, tls.as_ref(), &sasl_mechanisms)?;
        let config = BrokerConfig {
            node_id: args.node_id.or(file.node_id).unwrap_or(defaults::NODE_ID),
            kafka_addr,
            listeners,
            tls,
            sasl_mechanisms,
            sasl_bootstrap,
            super_users,
            authorizer: args.authorizer.or(file.authorizer).unwrap_or(false),
            allow_everyone_if_no_acl_found: args.allow_everyone_if_no_acl_found.or(file.allow_everyone_if_no_acl_found).unwrap_or(false),
            admin_metrics_public: args.admin_metrics_public.or(file.admin_metrics_public).unwrap_or(true),
            admin_tls: args.admin_tls.or(file.admin_tls).unwrap_or(false),
            max_connections_per_ip: args.max_connections_per_ip.or(file.max_connections_per_ip).unwrap_or(defaults::MAX_CONNECTIONS_PER_IP),
            connection_idle_timeout_ms: args
                .connection_idle_timeout_ms
                .or(file.connection_idle_timeout_ms)
                .unwrap_or(defaults::CONNECTION_IDLE_TIMEOUT_MS),
            sasl_auth_timeout_ms: args.sasl_auth_timeout_ms.or(file.sasl_auth_timeout_ms).unwrap_or(defaults::SASL_AUTH_TIMEOUT_MS),
            admin_addr: args.admin_addr.or(file.admin_addr).unwrap_or_else(|| parse_addr(defaults::ADMIN_ADDR)),
            advertised_addr: args.advertised_addr.or(file.advertised_addr),
            data_dir,
            object_store,
            auto_create_topics: args.auto_create_topics.or(file.auto_create_topics).unwrap_or(true),
            num_partitions: args.num_partitions.or(file.num_partitions).unwrap_or(defaults::NUM_PARTITIONS),
            transform_instances_max: args
                .transform_instances_max
                .or(file.transform_instances_max)
                .unwrap_or(defaults::TRANSFORM_INSTANCES_MAX),
            max_frame_bytes: args.max_frame_bytes.or(file.max_frame_bytes).unwrap_or(defaults::MAX_FRAME_BYTES),
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(defaults::MAX_CONNECTIONS),
            max_in_flight_per_connection: args
                .max_in_flight_per_connection
                .or(file.max_in_flight_per_connection)
                .unwrap_or(defaults::MAX_IN_FLIGHT_PER_CONNECTION),
            log_maintenance_interval_ms: args
                .log_maintenance_interval_ms
                .or(file.log_maintenance_interval_ms)
                .unwrap_or(defaults::LOG_MAINTENANCE_INTERVAL_MS),
            group_initial_rebalance_delay_ms: args
                .group_initial_rebalance_delay_ms
                .or(file.group_initial_rebalance_delay_ms)
                .unwrap_or(defaults::GROUP_INITIAL_REBALANCE_DELAY_MS),
            remote_cache_bytes: args.remote_cache_bytes.or(file.remote_cache_bytes).unwrap_or(defaults::REMOTE_CACHE_BYTES),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            metrics: args.metrics.or(file.metrics).unwrap_or(true),
            metrics_series_per_family_max: args
                .metrics_series_per_family_max
                .or(file.metrics_series_per_family_max)
                .unwrap_or(defaults::METRICS_SERIES_PER_FAMILY_MAX),
        };
        config.validate()?;
        Ok(config)
    }

    /// A configuration for tests: free ports, the given data directory.
    pub fn for_tests(data_dir: &Path) -> Self {
        let args = ServeArgs {
            kafka_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            data_dir: Some(data_dir.to_path_buf()),
            ..ServeArgs::default()
        };
        match Self::resolve(args) {
            Ok(config) => config,
            Err(e) => panic!("test configuration must be valid: {e}"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id < 0 {
            return Err(ConfigError::Invalid { field: "node_id", reason: format!("{} is negative", self.node_id) });
        }
        if self.num_partitions < 1 {
            return Err(ConfigError::Invalid { field: "num_partitions", reason: "must be at least 1".into() });
        }
        if self.remote_cache_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid { field: "remote_cache_bytes", reason: "must be at least 1048576 (1 MiB)".into() });
        }
        if self.admin_tls && self.tls.is_none() {
            return Err(ConfigError::Invalid { field: "admin_tls", reason: "needs tls cert_file and key_file".into() });
        }
        if self.max_frame_bytes < 1024 {
            return Err(ConfigError::Invalid { field: "max_frame_bytes", reason: "must be at least 1024".into() });
        }
        for (field, value) in [
            ("max_connections", self.max_connections as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            ("max_in_flight_per_connection", self.max_in_flight_per_connection as u64),
            ("connection_idle_timeout_ms", self.connection_idle_timeout_ms),
            ("sasl_auth_timeout_ms", self.sasl_auth_timeout_ms),
            ("transform_instances_max", u64::from(self.transform_instances_max)),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid { field, reason: "must be at least 1".into() });
            }
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source })
}

/// TLS from flags (cert and key together) over the file's `tls` section.
fn resolve_tls(args: &ServeArgs, file: Option<TlsConfig>) -> Result<Option<TlsConfig>, ConfigError> {
    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert_file), Some(key_file)) => Some(TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
            client_ca_file: None,
            client_auth: ClientAuth::None,
        }),
        (None, None) => file,
        _ => return Err(ConfigError::Invalid { field: "tls_cert_file", reason: "--tls-cert-file and --tls-key-file go together".into() }),
    };
    Ok(tls.map(|mut t| {
        if let Some(ca) = &args.tls_client_ca_file {
            t.client_ca_file = Some(ca.clone());
        }
        if let Some(auth) = args.tls_client_auth {
            t.client_auth = auth;
        }
        t
    }))
}

/// The data directory as an absolute path, resolved once against the working directory at
/// startup. Everything below it (the wasmtime code cache, which refuses relative paths, the
/// default `file://` object store, log directories) is derived from this one value, so a relative
/// `--data-dir` (or the default `./sluice-data`) means the same directory everywhere.
fn absolute_data_dir(data_dir: PathBuf) -> Result<PathBuf, ConfigError> {
    std::path::absolute(&data_dir).map_err(|e| ConfigError::Invalid {
        field: "data_dir",
        reason: format!("cannot resolve {} against the working directory: {e}", data_dir.display()),
    })
}

/// `file://<data-dir>/tier`; `data_dir` is already absolute (see [`absolute_data_dir`]).
fn default_object_store(data_dir: &Path) -> String {
    format!("file://{}", data_dir.join("tier").display())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_flags() {
        let config = BrokerConfig::resolve(ServeArgs::default()).expect("defaults are valid");
        assert_eq!(config.kafka_addr.to_string(), defaults::KAFKA_ADDR);
        assert_eq!(config.admin_addr.to_string(), defaults::ADMIN_ADDR);
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(config.data_dir, cwd.join(defaults::DATA_DIR), "resolved against the working directory");
        assert!(config.data_dir.is_absolute());
        assert!(config.object_store.starts_with("file:///"));
        assert!(config.object_store.ends_with("sluice-data/tier"));
    }

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.yaml");
        std::fs::write(&path, "node_id: 7\nkafka_addr: 127.0.0.1:1234\ndata_dir: /tmp/from-file\n").expect("write");
        let args = ServeArgs { config: Some(path), node_id: Some(3), ..ServeArgs::default() };
        let config = BrokerConfig::resolve(args).expect("valid");
        assert_eq!(config.node_id, 3, "flag beats file");
        assert_eq!(config.kafka_addr.port(), 1234, "file beats default");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));
    }

    #[test]
    fn transform_instances_max_comes_from_flag_or_file_and_zero_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sluice.yaml");
        std::fs::write(&path, "transform_instances_max: 8\n").expect("write");
        let from_file = BrokerConfig::resolve(ServeArgs { config: Some(path.clone()), ..ServeArgs::default() }).expect("valid");
        assert_eq!(from_file.transform_instances_max, 8);
        let flag = ServeArgs { config: Some(path), transform_instances_max: Some(2), ..ServeArgs::default() };
        assert_eq!(BrokerConfig::resolve(flag).expect("valid").transform_instances_max, 2);
        assert_eq!(BrokerConfig::resolve(ServeArgs::default()).expect("valid").transform_instances_max, defaults::TRANSFORM_INSTANCES_MAX);
        let zero = ServeArgs { transform_instances_max: Some(0), ..ServeArgs::default() };
        let err = BrokerConfig::resolve(zero).expect_err("0 instances cannot run a transform").to_string();
        assert!(err.contains("transform_instances_max"), "{err}");
    }

    #[test]
    fn unknown_file_field_names_the_file_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "kafka_adr: 127.0.0.1:1\n").expect("write");
        let err = BrokerConfig::resolve(ServeArgs { config: Some(path), ..ServeArgs::default() }).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("bad.yaml") && text.contains("kafka_adr"), "{text}");
    }
}
