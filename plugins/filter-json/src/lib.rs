//! `filter-json`: keeps records whose JSON value has a field matching a predicate.
//!
//! Config: `{"field": "a.b", "equals": <any JSON>}` keeps records whose field equals the value;
//! `{"field": "a.b", "exists": true}` keeps records that have the field. A value that is not
//! JSON is an error (the error policy decides: dead-letter by default).

use serde::Deserialize;
use sluice_sdk::{transform, Output, Record, Result};

/// The predicate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dotted path into the JSON object.
    field: String,
    /// Keep when the field equals this.
    #[serde(default)]
    equals: Option<serde_json::Value>,
    /// Keep when the field exists (when `equals` is absent).
    #[serde(default)]
    exists: Option<bool>,
}

/// Follows a dotted path.
pub fn lookup<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// The transform function.
pub fn filter(record: &Record, out: &mut Output, config: &Config) -> Result {
    let value: serde_json::Value = serde_json::from_slice(record.value())?;
    let field = lookup(&value, &config.field);
    let keep = match (&config.equals, config.exists) {
        (Some(expected), _) => field == Some(expected),
        (None, Some(exists)) => field.is_some() == exists,
        (None, None) => field.is_some(),
    };
    if keep {
        out.emit(record.value());
    }
    Ok(())
}

transform!(filter, Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_matching_records() {
        let config: Config = serde_json::from_str(r#"{"field":"e.level","equals":"error"}"#).unwrap();
        let mut out = Output::new();
        filter(&Record::new(br#"{"e":{"level":"error"}}"#), &mut out, &config).unwrap();
        filter(&Record::new(br#"{"e":{"level":"info"}}"#), &mut out, &config).unwrap();
        assert_eq!(out.values().len(), 1);
        assert!(filter(&Record::new(b"not json"), &mut out, &config).is_err());
    }
}
