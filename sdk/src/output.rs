//! The output handle: what a transform function emits for the current record. Records are encoded
//! straight into the ABI's output buffer, so emitting costs no per-record allocation on the fast
//! path ([`Output::emit`]).

use sluice_abi::{Decoded, Emitted, Inherit, OutputWriter};

/// One output record with explicit fields; anything not set is inherited from the input record
/// (key, headers, timestamp) or goes to the default output topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    topic: Option<String>,
    key: Inherit<Option<Vec<u8>>>,
    value: Option<Vec<u8>>,
    headers: Inherit<Vec<(String, Option<Vec<u8>>)>>,
    timestamp: Inherit<i64>,
}

impl OutRecord {
    /// A record with this value, inheriting everything else.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        OutRecord { topic: None, key: Inherit::Inherit, value: Some(value.into()), headers: Inherit::Inherit, timestamp: Inherit::Inherit }
    }

    /// A record with a null value (a tombstone).
    pub fn tombstone() -> Self {
        OutRecord { value: None, ..OutRecord::new(Vec::new()) }
    }

    /// Sends it to `topic` instead of the default output.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Inherit::Set(Some(key.into()));
        self
    }

    /// Sets a null key.
    pub fn null_key(mut self) -> Self {
        self.key = Inherit::Set(None);
        self
    }

    /// Adds a header. The first call replaces the inherited headers.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let mut headers = match self.headers {
            Inherit::Inherit => Vec::new(),
            Inherit::Set(h) => h,
        };
        headers.push((key.into(), Some(value.into())));
        self.headers = Inherit::Set(headers);
        self
    }

    /// Drops the inherited headers.
    pub fn no_headers(mut self) -> Self {
        self.headers = Inherit::Set(Vec::new());
        self
    }

    /// Sets the timestamp (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Inherit::Set(timestamp_ms);
        self
    }
}

/// Where a transform function emits records: zero, one or many per input record, to the default
/// output topic or any named topic. No fixed cap.
#[derive(Debug, Default)]
pub struct Output {
    writer: OutputWriter,
    /// Index in the batch of the record being processed.
    pub(crate) input_index: u32,
}

impl Output {
    /// An empty output (for tests: call your function, then inspect [`Output::records`]).
    pub fn new() -> Self {
        Output::default()
    }

    /// Emits `value` to the default output, with the input's key, headers and timestamp.
    pub fn emit(&mut self, value: impl AsRef<[u8]>) {
        self.writer.record_value(self.input_index, "", Some(value.as_ref()));
    }

    /// Emits `value` to `topic`, with the input's key, headers and timestamp.
    pub fn emit_to(&mut self, topic: &str, value: impl AsRef<[u8]>) {
        self.writer.record_value(self.input_index, topic, Some(value.as_ref()));
    }

    /// Emits a record with explicit fields.
    pub fn send(&mut self, record: OutRecord) {
        let emitted = Emitted {
            input_index: self.input_index,
            topic: record.topic,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp: record.timestamp,
        };
        self.writer.record(&emitted);
    }

    /// What has been emitted so far (decodes the buffer; meant for tests).
    pub fn records(&self) -> Vec<Emitted> {
        Decoded::parse(self.writer.bytes(), self.input_index as usize + 1).map(|d| d.records).unwrap_or_default()
    }

    /// Values emitted so far, as text (for tests).
    pub fn values(&self) -> Vec<String> {
        self.records().iter().map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()).collect()
    }

    /// The encoded output buffer, as the host reads it after a call (for the benchmark).
    #[doc(hidden)]
    pub fn encoded(&self) -> &[u8] {
        self.writer.bytes()
    }

    pub(crate) fn writer(&mut self) -> &mut OutputWriter {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test sees is exactly what the broker would decode: fields set or inherited.
    #[test]
    fn builder_sets_and_inherits_fields() {
        let mut out = Output::new();
        out.emit("plain");
        out.send(OutRecord::new("full").topic("t").key("k").header("h", "v").timestamp(7));
        out.send(OutRecord::tombstone().null_key().no_headers());
        let r = out.records();
        assert_eq!((r[0].topic.as_deref(), &r[0].key, &r[0].timestamp), (None, &Inherit::Inherit, &Inherit::Inherit));
        assert_eq!(r[1].topic.as_deref(), Some("t"));
        assert_eq!(r[1].key, Inherit::Set(Some(b"k".to_vec())));
        assert_eq!(r[1].headers, Inherit::Set(vec![("h".into(), Some(b"v".to_vec()))]));
        assert_eq!(r[1].timestamp, Inherit::Set(7));
        assert_eq!((r[2].value.as_deref(), &r[2].key, &r[2].headers), (None, &Inherit::Set(None), &Inherit::Set(vec![])));
    }
}
