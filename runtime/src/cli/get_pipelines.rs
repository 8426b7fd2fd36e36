//! `sluice get pipelines [-o table|yaml|json]`: the Pipeline documents the broker stored when
//! they were applied. `-o yaml` prints them as applied (one YAML document each).

use super::admin_client::AdminClient;
use super::output::{structured, Format, Table};
use crate::admin_manifests::StoredManifest;

/// The listing, as text.
pub async fn run(client: &AdminClient, format: Format) -> anyhow::Result<String> {
    let pipelines: Vec<StoredManifest> = client.manifests().await?.into_iter().filter(|m| m.kind == "Pipeline").collect();
    match format {
        Format::Json => structured(&pipelines, Format::Json),
        Format::Yaml => {
            let mut out = String::new();
            for p in &pipelines {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(&p.document)?);
            }
            Ok(out)
        }
        Format::Table => {
            let mut table = Table::new(&["NAME", "TOPICS", "TRANSFORMS"]);
            let names = |doc: &serde_json::Value, field: &str| -> String {
                let list = doc["spec"][field].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","));
                list.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
            };
            for p in &pipelines {
                table.row(vec![p.name.clone(), names(&p.document, "topics"), names(&p.document, "transforms")]);
            }
            Ok(table.render("no pipelines"))
        }
    }
}
