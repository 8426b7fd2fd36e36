//! `sluice get topics|transforms|groups [-o table|yaml|json]`: one line per object, from the
//! admin HTTP API.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::args::{out, run, AdminArgs};
use super::output::{pairs, structured, Format, Table};

/// List topics, transforms or consumer groups.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  sluice get topics
  sluice get transforms -o yaml
  sluice get groups -o json --admin http://broker:9644
  SLUICE_ADMIN=http://broker:9644 sluice get topics --all")]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub format: Format,
    /// Also list the broker's internal topics (`_sluice_…`).
    #[arg(long)]
    pub all: bool,
    /// Where the admin API is.
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// The kinds `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Topics: partitions and config overrides.
    Topics,
    /// Deployed transforms: state, input, output, lag.
    Transforms,
    /// Consumer groups: state and members.
    Groups,
    /// Pipelines applied from manifests.
    Pipelines,
}

/// Runs `sluice get`.
pub fn main(args: GetArgs) -> ExitCode {
    run("get", get(args))
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = args.admin.client()?;
    let text = match args.kind {
        Kind::Topics => {
            let topics: Vec<_> = client.topics().await?.into_iter().filter(|t| args.all || !t.internal).collect();
            if args.format != Format::Table {
                structured(&topics, args.format)?
            } else {
                let mut table = Table::new(&["NAME", "PARTITIONS", "CONFIGS"]);
                for t in &topics {
                    table.row(vec![t.name.clone(), t.partitions.to_string(), pairs(&t.configs)]);
                }
                table.render("no topics")
            }
        }
        Kind::Transforms => {
            let transforms = client.transforms().await?;
            if args.format != Format::Table {
                structured(&transforms, args.format)?
            } else {
                let mut table = Table::new(&["NAME", "STATE", "INPUT", "OUTPUT", "LAG", "VERSION"]);
                for t in &transforms {
                    table.row(vec![
                        t.name.clone(),
                        state_name(&t.state),
                        t.spec.input.clone(),
                        t.spec.output.clone(),
                        t.lag.to_string(),
                        t.version.to_string(),
                    ]);
                }
                table.render("no transforms")
            }
        }
        Kind::Groups => {
            let groups = client.groups().await?;
            if args.format != Format::Table {
                structured(&groups, args.format)?
            } else {
                let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL", "MEMBERS"]);
                for g in &groups {
                    let protocol = if g.protocol.is_empty() { "-".to_string() } else { g.protocol.clone() };
                    table.row(vec![g.group_id.clone(), g.state.clone(), protocol, g.members.to_string()]);
                }
                table.render("no consumer groups")
            }
        }
        Kind::Pipelines => super::get_pipelines::run(&client, args.format).await?,
    };
    out(&text)
}

/// `running`, `paused` or `failed`, as the API spells it.
pub fn state_name(state: &crate::transform::TransformState) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| format!("{state:?}"))
}
