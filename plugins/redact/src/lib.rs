//! `redact`: masks configured fields of JSON values. Config: `{"fields": ["email", "user.ssn"],
//! "mask": "***"}` (mask defaults to `"***"`). Fields that are absent are left alone; a value
//! that is not a JSON object is an error (the error policy decides).

use serde::Deserialize;
use sluice_sdk::{transform, Output, Record, Result};

/// Which fields to mask.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    fields: Vec<String>,
    #[serde(default = "default_mask")]
    mask: String,
}

fn default_mask() -> String {
    "***".into()
}

/// The transform function.
pub fn redact(record: &Record, out: &mut Output, config: &Config) -> Result {
    let mut value: serde_json::Value = serde_json::from_slice(record.value())?;
    if !value.is_object() {
        return Err("the value is not a JSON object".into());
    }
    for path in &config.fields {
        let mut keys = path.split('.').peekable();
        let mut node = &mut value;
        while let Some(key) = keys.next() {
            let Some(child) = node.get_mut(key) else { break };
            if keys.peek().is_none() {
                *child = serde_json::Value::String(config.mask.clone());
                break;
            }
            node = child;
        }
    }
    out.emit(serde_json::to_vec(&value)?);
    Ok(())
}

transform!(redact, Config);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_fields() {
        let config: Config = serde_json::from_str(r#"{"fields":["email","user.ssn","missing.x"]}"#).unwrap();
        let mut out = Output::new();
        redact(&Record::new(br#"{"email":"a@b","user":{"ssn":"1","name":"n"}}"#), &mut out, &config).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out.values()[0]).unwrap();
        assert_eq!(v["email"], "***");
        assert_eq!(v["user"]["ssn"], "***");
        assert_eq!(v["user"]["name"], "n");
    }
}
