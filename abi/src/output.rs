//! The guest → host output buffer (layout in the crate docs): [`OutputWriter`] on the guest side,
//! [`Decoded::parse`] on the host side. The decoder treats the buffer as untrusted input: every
//! length is checked against what remains, and a malformed buffer is a [`DecodeError`], never a
//! panic.

use crate::state::{decode_op, encode_op, StateOp};

const STATUS_OK: u8 = 0;
const STATUS_FAILED: u8 = 1;
const ENTRY_RECORD: u8 = 1;
const ENTRY_LOG: u8 = 2;
const ENTRY_RECORD_ERROR: u8 = 3;
const ENTRY_STATE: u8 = 4;
const ENTRY_STATE_BYTES: u8 = 5;

/// A field that is either taken from the input record or set explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inherit<T> {
    /// Copy the input record's value of this field.
    Inherit,
    /// Use this value.
    Set(T),
}

/// One output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Index of the input record in its batch.
    pub input_index: u32,
    /// `None`: the transform's default output topic.
    pub topic: Option<String>,
    /// `Set(None)` is a null key.
    pub key: Inherit<Option<Vec<u8>>>,
    /// `None` is a null value.
    pub value: Option<Vec<u8>>,
    /// Header list (key, value).
    pub headers: Inherit<Vec<(String, Option<Vec<u8>>)>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Inherit<i64>,
}

/// One log line written by the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Index of the input record being processed, or [`crate::NO_RECORD`].
    pub input_index: u32,
    /// 0 error, 1 warn, 2 info, 3 debug, 4 trace.
    pub level: u8,
    /// The text.
    pub message: String,
}

/// A record the guest's function refused (it returned an error for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the input record in its batch.
    pub input_index: u32,
    /// The error text.
    pub message: String,
}

/// Whether the call as a whole succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Entries follow.
    Ok,
    /// The call failed (e.g. the config did not parse); nothing else was produced.
    Failed(String),
}

/// A decoded output buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Overall status.
    pub status: Status,
    /// Output records in emission order.
    pub records: Vec<Emitted>,
    /// Log lines in emission order.
    pub logs: Vec<LogLine>,
    /// Per-record failures.
    pub errors: Vec<RecordError>,
    /// State changes of the call (ABI v2), at most one per key, in the order the batch first touched them.
    pub state: Vec<StateOp>,
    /// Bytes of state the guest holds after the call (keys plus values), if it reported them.
    pub state_bytes: Option<u64>,
}

/// The output buffer is malformed (a guest bug or a hostile module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte position of the problem.
    pub at: usize,
    /// What was wrong.
    pub reason: &'static str,
}

// Display and Error by hand rather than thiserror: this crate is compiled into every guest.
impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "malformed transform output at byte {}: {}", self.at, self.reason)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }
    pub(crate) fn fail<T>(&self, reason: &'static str) -> Result<T, DecodeError> {
        Err(DecodeError { at: self.at, reason })
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.bytes.get(self.at..self.at.saturating_add(n)) {
            Some(slice) if self.at.checked_add(n).is_some() => {
                self.at += n;
                Ok(slice)
            }
            _ => self.fail("truncated"),
        }
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.fail("text is not UTF-8"),
        }
    }
    pub(crate) fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

impl Decoded {
    /// Decodes an output buffer. `batch_len` bounds `input_index`.
    pub fn parse(bytes: &[u8], batch_len: usize) -> Result<Decoded, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let mut out =
            Decoded { status: Status::Ok, records: Vec::new(), logs: Vec::new(), errors: Vec::new(), state: Vec::new(), state_bytes: None };
        match r.u8()? {
            STATUS_OK => {}
            STATUS_FAILED => {
                out.status = Status::Failed(r.string()?);
                return Ok(out);
            }
            _ => return r.fail("unknown status"),
        }
        while !r.done() {
            match r.u8()? {
                ENTRY_RECORD => out.records.push(parse_record(&mut r, batch_len)?),
                ENTRY_LOG => {
                    let input_index = r.u32()?;
                    let level = r.u8()?;
                    let message = String::from_utf8_lossy(r.bytes()?).into_owned();
                    out.logs.push(LogLine { input_index, level, message });
                }
                ENTRY_RECORD_ERROR => {
                    let input_index = index(&mut r, batch_len)?;
                    let message = String::from_utf8_lossy(r.bytes()?).into_owned();
                    out.errors.push(RecordError { input_index, message });
                }
                ENTRY_STATE => out.state.push(decode_op(&mut r)?),
                ENTRY_STATE_BYTES => out.state_bytes = Some(r.i64()? as u64),
                _ => return r.fail("unknown entry kind"),
            }
        }
        Ok(out)
    }
}

fn index(r: &mut Reader<'_>, batch_len: usize) -> Result<u32, DecodeError> {
    let i = r.u32()?;
    if (i as usize) < batch_len {
        Ok(i)
    } else {
        r.fail("input_index past the end of the batch")
    }
}

fn parse_record(r: &mut Reader<'_>, batch_len: usize) -> Result<Emitted, DecodeError> {
    let input_index = index(r, batch_len)?;
    let topic = r.string()?;
    let topic = (!topic.is_empty()).then_some(topic);
    let key = match r.u8()? {
        0 => Inherit::Inherit,
        1 => Inherit::Set(None),
        2 => Inherit::Set(Some(r.bytes()?.to_vec())),
        _ => return r.fail("unknown key tag"),
    };
    let value = match r.u8()? {
        0 => None,
        1 => Some(r.bytes()?.to_vec()),
        _ => return r.fail("unknown value tag"),
    };
    let headers = match r.u8()? {
        0 => Inherit::Inherit,
        1 => {
            let count = r.u32()? as usize;
            // Each header takes at least 9 bytes; refuse counts the buffer cannot hold.
            if count > r.bytes.len().saturating_sub(r.at) / 9 {
                return r.fail("header count larger than the buffer");
            }
            let mut headers = Vec::with_capacity(count);
            for _ in 0..count {
                let key = r.string()?;
                let value = match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes()?.to_vec()),
                    _ => return r.fail("unknown header value tag"),
                };
                headers.push((key, value));
            }
            Inherit::Set(headers)
        }
        _ => return r.fail("unknown headers tag"),
    };
    let timestamp = match r.u8()? {
        0 => Inherit::Inherit,
        1 => Inherit::Set(r.i64()?),
        _ => return r.fail("unknown timestamp tag"),
    };
    Ok(Emitted { input_index, topic, key, value, headers, timestamp })
}

/// Builds an output buffer (guest side). Start with [`OutputWriter::new`]; finish with
/// [`OutputWriter::bytes`].
#[derive(Debug, Clone)]
pub struct OutputWriter {
    buf: Vec<u8>,
}

impl Default for OutputWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl OutputWriter {
    /// An empty, successful output.
    pub fn new() -> Self {
        OutputWriter { buf: vec![STATUS_OK] }
    }

    /// Resets to an empty, successful output, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.push(STATUS_OK);
    }

    /// A failed call: replaces everything written so far.
    pub fn fail(&mut self, message: &str) {
        self.buf.clear();
        self.buf.push(STATUS_FAILED);
        self.put_bytes(message.as_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn put_bytes(&mut self, b: &[u8]) {
        // A single field over 4 GiB cannot exist in a 32-bit guest.
        self.put_u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }

    /// Appends one output record.
    pub fn record(&mut self, record: &Emitted) {
        self.buf.push(ENTRY_RECORD);
        self.put_u32(record.input_index);
        self.put_bytes(record.topic.as_deref().unwrap_or("").as_bytes());
        match &record.key {
            Inherit::Inherit => self.buf.push(0),
            Inherit::Set(None) => self.buf.push(1),
            Inherit::Set(Some(k)) => {
                self.buf.push(2);
                self.put_bytes(k);
            }
        }
        match &record.value {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.put_bytes(v);
            }
        }
        match &record.headers {
            Inherit::Inherit => self.buf.push(0),
            Inherit::Set(headers) => {
                self.buf.push(1);
                self.put_u32(headers.len() as u32);
                for (k, v) in headers {
                    self.put_bytes(k.as_bytes());
                    match v {
                        None => self.buf.push(0),
                        Some(v) => {
                            self.buf.push(1);
                            self.put_bytes(v);
                        }
                    }
                }
            }
        }
        match record.timestamp {
            Inherit::Inherit => self.buf.push(0),
            Inherit::Set(ts) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&ts.to_le_bytes());
            }
        }
    }

    /// Appends an output record with only a value and a topic (empty: the default output);
    /// key, headers and timestamp are inherited. The fast path of a map transform.
    pub fn record_value(&mut self, input_index: u32, topic: &str, value: Option<&[u8]>) {
        self.buf.push(ENTRY_RECORD);
        self.put_u32(input_index);
        self.put_bytes(topic.as_bytes());
        self.buf.push(0);
        match value {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.put_bytes(v);
            }
        }
        self.buf.extend_from_slice(&[0, 0]);
    }

    /// Appends one log line.
    pub fn log(&mut self, input_index: u32, level: u8, message: &str) {
        self.buf.push(ENTRY_LOG);
        self.put_u32(input_index);
        self.buf.push(level);
        self.put_bytes(message.as_bytes());
    }

    /// Appends one per-record failure.
    pub fn record_error(&mut self, input_index: u32, message: &str) {
        self.buf.push(ENTRY_RECORD_ERROR);
        self.put_u32(input_index);
        self.put_bytes(message.as_bytes());
    }

    /// Appends one state change (ABI v2).
    pub fn state(&mut self, op: &StateOp) {
        self.buf.push(ENTRY_STATE);
        encode_op(&mut self.buf, op);
    }

    /// Appends one state change, a put, from borrowed bytes (ABI v2; same encoding as
    /// [`OutputWriter::state`]).
    pub fn state_put(&mut self, key: &[u8], value: &[u8]) {
        self.buf.push(ENTRY_STATE);
        crate::state::encode_put(&mut self.buf, key, value);
    }

    /// Appends one state change, a delete, from borrowed bytes (ABI v2).
    pub fn state_delete(&mut self, key: &[u8]) {
        self.buf.push(ENTRY_STATE);
        crate::state::encode_delete(&mut self.buf, key);
    }

    /// Reports the guest's state size after the call (ABI v2).
    pub fn state_bytes(&mut self, bytes: u64) {
        self.buf.push(ENTRY_STATE_BYTES);
        self.buf.extend_from_slice(&bytes.to_le_bytes());
    }

    /// The encoded buffer.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every entry kind and field variant survives writer → parser.
    #[test]
    fn round_trip() {
        let mut w = OutputWriter::new();
        let rec = Emitted {
            input_index: 1,
            topic: Some("errors".into()),
            key: Inherit::Set(Some(b"k".to_vec())),
            value: Some(b"v".to_vec()),
            headers: Inherit::Set(vec![("a".into(), None), ("b".into(), Some(b"x".to_vec()))]),
            timestamp: Inherit::Set(7),
        };
        let plain = Emitted {
            input_index: 0,
            topic: None,
            key: Inherit::Inherit,
            value: None,
            headers: Inherit::Inherit,
            timestamp: Inherit::Inherit,
        };
        w.record(&rec);
        w.record(&plain);
        w.log(0, 2, "hello");
        w.record_error(1, "bad");
        let put = StateOp::Put { key: b"k".to_vec(), value: b"1".to_vec() };
        w.state(&put);
        w.state(&StateOp::Delete { key: b"j".to_vec() });
        w.state_put(b"k2", b"2");
        w.state_delete(b"j2");
        w.state_bytes(42);
        let d = Decoded::parse(w.bytes(), 2).expect("parse");
        assert_eq!(
            d.state,
            vec![
                put,
                StateOp::Delete { key: b"j".to_vec() },
                StateOp::Put { key: b"k2".to_vec(), value: b"2".to_vec() },
                StateOp::Delete { key: b"j2".to_vec() }
            ]
        );
        assert_eq!(d.state_bytes, Some(42));
        assert_eq!(d.status, Status::Ok);
        assert_eq!(d.records, vec![rec, plain]);
        assert_eq!(d.logs[0].message, "hello");
        assert_eq!(d.errors[0].message, "bad");
    }

    /// Truncations and out-of-range indexes are errors, never panics.
    #[test]
    fn malformed_buffers_are_errors() {
        let mut w = OutputWriter::new();
        w.record(&Emitted {
            input_index: 0,
            topic: None,
            key: Inherit::Inherit,
            value: Some(vec![1; 10]),
            headers: Inherit::Inherit,
            timestamp: Inherit::Inherit,
        });
        let bytes = w.bytes().to_vec();
        // Byte 0 is the status; every cut inside the one entry that follows is truncated.
        for cut in 2..bytes.len() {
            assert!(Decoded::parse(&bytes[..cut], 1).is_err(), "cut at {cut}");
        }
        assert!(Decoded::parse(&bytes, 0).is_err(), "index past the batch");
        assert!(Decoded::parse(&[9], 1).is_err());
        let mut failed = OutputWriter::new();
        failed.fail("bad config");
        assert_eq!(Decoded::parse(failed.bytes(), 0).expect("parse").status, Status::Failed("bad config".into()));
    }
}
