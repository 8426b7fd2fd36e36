//! `router`: content-based routing. Each route matches a substring of the value (`contains`) or
//! a JSON field's value (`field` + `equals`) and names a topic; a record goes to every matching
//! route's topic, and to the default output when no route matches (unless `default` is false).
//!
//! Config: `{"routes": [{"contains": "ERROR", "topic": "errors"},
//! {"field": "kind", "equals": "click", "topic": "clicks"}], "default": true}`.

use serde::Deserialize;
use sluice_sdk::{transform, Output, Record, Result};

/// One route.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    topic: String,
}

/// The routing table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    routes: Vec<Route>,
    #[serde(default = "yes")]
    default: bool,
}

fn yes() -> bool {
    true
}

/// The transform function.
pub fn route(record: &Record, out: &mut Output, config: &Config) -> Result {
    let text = record.value_str();
    let mut json: Option<Option<serde_json::Value>> = None;
    let mut matched = false;
    for r in &config.routes {
        let hit = match (&r.contains, &r.field) {
            (Some(needle), _) => text.contains(needle.as_str()),
            (None, Some(field)) => {
                let parsed = json.get_or_insert_with(|| serde_json::from_slice(record.value()).ok());
                let found = parsed.as_ref().and_then(|v| field.split('.').try_fold(v, |v, k| v.get(k)));
                found.is_some() && (r.equals.is_none() || found == r.equals.as_ref())
            }
            (None, None) => true,
        };
        if hit {
            out.emit_to(&r.topic, record.value());
            matched = true;
        }
    }
    if !matched && config.default {
        out.emit(record.value());
    }
    Ok(())
}

transform!(route, Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_substring_and_field() {
        let config: Config = serde_json::from_str(
            r#"{"routes":[{"contains":"ERROR","topic":"errors"},{"field":"kind","equals":"click","topic":"clicks"}]}"#,
        )
        .unwrap();
        let mut out = Output::new();
        route(&Record::new(b"ERROR x"), &mut out, &config).unwrap();
        route(&Record::new(br#"{"kind":"click"}"#), &mut out, &config).unwrap();
        route(&Record::new(b"plain"), &mut out, &config).unwrap();
        let topics: Vec<Option<String>> = out.records().into_iter().map(|r| r.topic).collect();
        assert_eq!(topics, [Some("errors".into()), Some("clicks".into()), None]);
    }
}
