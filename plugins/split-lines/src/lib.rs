//! `split-lines`: one record to many. Each non-empty line of the value (split on `\n`, a
//! trailing `\r` removed) becomes one output record with the input's key, headers and
//! timestamp, and a `line` header with its 0-based line number.

use sluice_sdk::{transform, OutRecord, Output, Record, Result};

/// The transform function.
pub fn split_lines(record: &Record, out: &mut Output) -> Result {
    let mut headers: Vec<(String, Vec<u8>)> =
        record.headers.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect();
    headers.push(("line".into(), Vec::new()));
    for (n, line) in record.value().split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let mut r = OutRecord::new(line).no_headers();
        if let Some(last) = headers.last_mut() {
            last.1 = n.to_string().into_bytes();
        }
        for (k, v) in &headers {
            r = r.header(k.as_str(), v.as_slice());
        }
        out.send(r);
    }
    Ok(())
}

transform!(split_lines);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_non_empty_line() {
        let mut out = Output::new();
        split_lines(&Record::new(b"a\r\n\nb\nc"), &mut out).unwrap();
        assert_eq!(out.values(), ["a", "b", "c"]);
    }
}
