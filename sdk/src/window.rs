//! Event-time windows. A window is a half-open interval of event time `[start, end)` in
//! milliseconds; [`Tumbling`] assigns each timestamp to exactly one fixed-size window.
//! Accumulators live in the state store (namespace `w`, ordered by window end), so closing the
//! windows a watermark has passed is a scan of the store's first entries, and a restored
//! instance closes exactly the windows the crashed one would have.

use serde::de::DeserializeOwned;

/// `[start, end)` in milliseconds of event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end: the window closes once the watermark reaches it.
    pub end: i64,
}

/// Fixed-size, non-overlapping windows aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size_ms: i64,
}

impl Tumbling {
    /// Windows of `size_ms` (at least 1) milliseconds.
    pub fn new(size_ms: i64) -> Self {
        Tumbling { size_ms: size_ms.max(1) }
    }

    /// One-minute windows.
    pub fn minutes(n: i64) -> Self {
        Tumbling::new(n.saturating_mul(60_000))
    }

    /// The window holding `timestamp_ms` (negative times included: floor division).
    pub fn window_of(&self, timestamp_ms: i64) -> Window {
        let start = timestamp_ms.div_euclid(self.size_ms) * self.size_ms;
        Window { start, end: start.saturating_add(self.size_ms) }
    }
}

/// What adding a record to a window did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowAdd {
    /// The accumulator was updated.
    Added,
    /// The window had already closed (its end is at or below the watermark): nothing changed.
    /// Drop the record or route it to a side topic.
    Late,
}

/// A window the watermark has passed, handed to
/// [`StatefulTransform::on_window_close`](crate::StatefulTransform::on_window_close). Its state
/// is already deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedWindow<'a> {
    /// The record key the window belongs to (`None`: null-keyed records).
    pub key: Option<&'a [u8]>,
    /// The window.
    pub window: Window,
    /// The accumulator's serialised bytes; decode with [`ClosedWindow::value`].
    pub bytes: &'a [u8],
}

impl ClosedWindow<'_> {
    /// The accumulator, decoded.
    pub fn value<A: DeserializeOwned>(&self) -> crate::Result<A> {
        Ok(serde_json::from_slice(self.bytes)?)
    }
}

/// A timer that came due, handed to [`StatefulTransform::on_timer`](crate::StatefulTransform::on_timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer<'a> {
    /// The record key it was set for.
    pub key: Option<&'a [u8]>,
    /// The event time it was set for; the watermark has reached it.
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tumbling windows tile the time line: every timestamp falls in exactly one, negative
    /// ones included.
    #[test]
    fn tumbling_assignment() {
        let t = Tumbling::minutes(1);
        assert_eq!(t.window_of(0), Window { start: 0, end: 60_000 });
        assert_eq!(t.window_of(59_999), Window { start: 0, end: 60_000 });
        assert_eq!(t.window_of(60_000), Window { start: 60_000, end: 120_000 });
        assert_eq!(t.window_of(-1), Window { start: -60_000, end: 0 });
    }
}
