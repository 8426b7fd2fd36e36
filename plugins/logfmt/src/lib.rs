//! `logfmt`: parses a logfmt line (`ts=2026-12-02T00:00:00Z level=error service=checkout
//! msg="payment failed"`) into a JSON object of strings (a bare `key` becomes `"true"`). Key,
//! headers and timestamp are inherited. A value that is not logfmt (no `key=value` pair, an
//! unterminated quote) is an error: the error policy decides (dead-letter by default).

use sluice_sdk::{transform, Output, Record, Result};

/// Parses one logfmt line into (key, value) pairs in order.
pub fn parse(line: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = String::from("true");
        if chars.peek() == Some(&'=') {
            chars.next();
            value.clear();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\\') => value.push(chars.next().ok_or("unterminated escape")?),
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated quote in the value of {key:?}")),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        if key.is_empty() {
            return Err("a value without a key".into());
        }
        pairs.push((key, value));
        while chars.peek() == Some(&' ') {
            chars.next();
        }
    }
    if !pairs.iter().any(|(_, v)| v != "true") {
        return Err("not logfmt: no key=value pair".into());
    }
    Ok(pairs)
}

/// The transform function.
pub fn logfmt(record: &Record, out: &mut Output) -> Result {
    let pairs = parse(&record.value_str()).map_err(|e| -> sluice_sdk::Error { e.into() })?;
    let object: serde_json::Map<String, serde_json::Value> = pairs.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    out.emit(serde_json::to_vec(&object)?);
    Ok(())
}

transform!(logfmt);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_bare_and_escaped_values() {
        let got = parse(r#"level=error service=checkout msg="payment \"declined\"" retry"#).unwrap();
        let want = [("level", "error"), ("service", "checkout"), ("msg", "payment \"declined\""), ("retry", "true")];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn rejects_what_is_not_logfmt() {
        assert!(parse("just some words").is_err());
        assert!(parse(r#"msg="open"#).is_err());
        assert!(parse("=x a=b").is_err());
    }

    #[test]
    fn emits_a_json_object() {
        let mut out = Output::new();
        logfmt(&Record::new(b"level=info email=a@b.c"), &mut out).unwrap();
        assert_eq!(out.values(), [r#"{"email":"a@b.c","level":"info"}"#]);
    }
}
