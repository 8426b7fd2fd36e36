//! The input record a transform function receives: borrowed views of the batch the broker
//! handed over (in wasm they point into the archived batch; in tests, into your own data).

use std::borrow::Cow;

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value; `None` is a null value.
    pub value: Option<&'a [u8]>,
}

/// One input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The input topic.
    pub topic: &'a str,
    /// The input partition.
    pub partition: i32,
    /// Offset in the input partition.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// `None` is a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// In the order the producer wrote them.
    pub headers: Vec<Header<'a>>,
}

impl<'a> Record<'a> {
    /// A record with this value and everything else empty or zero (for tests).
    pub fn new(value: &'a [u8]) -> Self {
        Record { topic: "", partition: 0, offset: 0, timestamp: 0, key: None, value: Some(value), headers: Vec::new() }
    }

    /// The same record with a key (for tests).
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// The same record with one more header (for tests).
    pub fn with_header(mut self, key: &'a str, value: &'a [u8]) -> Self {
        self.headers.push(Header { key, value: Some(value) });
        self
    }

    /// The value as bytes; empty for a null value.
    pub fn value(&self) -> &'a [u8] {
        self.value.unwrap_or_default()
    }

    /// The value as text, with invalid UTF-8 replaced.
    pub fn value_str(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.value())
    }

    /// The first header named `key`.
    pub fn header(&self, key: &str) -> Option<&'a [u8]> {
        self.headers.iter().find(|h| h.key == key).and_then(|h| h.value)
    }
}
