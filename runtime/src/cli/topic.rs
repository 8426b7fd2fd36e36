//! `sluice topic create|delete|alter`, through the admin HTTP API (which calls the same broker
//! functions as CreateTopics, DeleteTopics, CreatePartitions and IncrementalAlterConfigs).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::args::{out, run, AdminArgs};
use crate::admin_api::{AlterTopic, CreateTopic};

/// Create, delete or change topics.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  sluice topic create orders --partitions 6 --config retention.ms=86400000
  sluice topic alter orders --partitions 12 --config cleanup.policy=compact --reset retention.ms
  sluice topic delete orders")]
pub struct TopicArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Create a topic.
    #[command(after_help = "Examples:
  sluice topic create orders --partitions 6
  sluice topic create orders --config retention.ms=86400000 --config cleanup.policy=compact
  sluice topic create orders --partitions 6 --validate-only   # check, create nothing")]
    Create {
        /// Topic name: letters, digits, '.', '_' and '-'.
        name: String,
        /// Partitions (default: the broker's num_partitions).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// A config override NAME=VALUE; repeat for more.
        #[arg(short, long = "config", value_name = "NAME=VALUE", value_parser = parse_pair)]
        configs: Vec<(String, String)>,
        /// Check everything but create nothing.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete a topic and its data.
    #[command(after_help = "Examples:
  sluice topic delete orders
  sluice topic delete orders --admin http://broker:9644")]
    Delete {
        /// Topic name.
        name: String,
    },
    /// Add partitions or change configs.
    #[command(after_help = "Examples:
  sluice topic alter orders --partitions 12
  sluice topic alter orders --config retention.ms=3600000 --reset cleanup.policy")]
    Alter {
        /// Topic name.
        name: String,
        /// Grow to this many partitions (never shrinks).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// Set a config override NAME=VALUE; repeat for more.
        #[arg(short, long = "config", value_name = "NAME=VALUE", value_parser = parse_pair)]
        configs: Vec<(String, String)>,
        /// Remove an override (back to the default); repeat for more.
        #[arg(long = "reset", value_name = "NAME")]
        resets: Vec<String>,
    },
}

/// `NAME=VALUE`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// Runs `sluice topic`.
pub fn main(args: TopicArgs) -> ExitCode {
    run("topic", topic(args))
}

async fn topic(args: TopicArgs) -> anyhow::Result<()> {
    let client = args.admin.client()?;
    match args.action {
        Action::Create { name, partitions, configs, validate_only } => {
            let request = CreateTopic { name, partitions, configs: configs.into_iter().collect(), validate_only };
            let created = client.create_topic(&request).await?;
            let verb = if validate_only { "would be created (validate only)" } else { "created" };
            out(&format!("topic/{} {verb} with {} partitions\n", created.name, created.partitions.len()))
        }
        Action::Delete { name } => {
            client.delete_topic(&name).await?;
            out(&format!("topic/{name} deleted\n"))
        }
        Action::Alter { name, partitions, configs, resets } => {
            let mut changes: BTreeMap<String, Option<String>> = configs.into_iter().map(|(k, v)| (k, Some(v))).collect();
            for key in resets {
                if changes.insert(key.clone(), None).is_some() {
                    anyhow::bail!("{key} is both set (--config) and reset (--reset)");
                }
            }
            if partitions.is_none() && changes.is_empty() {
                anyhow::bail!("nothing to change: give --partitions, --config or --reset");
            }
            let altered = client.alter_topic(&name, &AlterTopic { partitions, configs: changes }).await?;
            out(&format!("topic/{name} altered: {} partitions\n", altered.partitions.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_at_the_first_equals() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_pair("retention.ms="), Ok(("retention.ms".into(), String::new())));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=x").is_err());
    }
}
