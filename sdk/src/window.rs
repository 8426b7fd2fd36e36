//! Event-time windows. A window is a half-open interval of event time `[start, end)` in
//! milliseconds; [`Tumbling`] assigns each timestamp to exactly one fixed-size window,
//! [`Hopping`] to every window of a fixed size whose start is a multiple of the advance (so
//! `size / advance` overlapping windows, when the size is a multiple of the advance).
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

/// Fixed-size windows that start every `advance_ms` (aligned to the Unix epoch) and overlap when
/// the advance is smaller than the size: a timestamp belongs to every window `[start, start +
/// size)` that holds it. Call [`Context::window_add`](crate::Context::window_add) once per window
/// of [`Hopping::windows_of`]; each closes on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hopping {
    size_ms: i64,
    advance_ms: i64,
}

impl Hopping {
    /// Windows of `size_ms` (at least 1) starting every `advance_ms` (clamped to `1..=size_ms`:
    /// an advance larger than the size would leave gaps no record belongs to).
    pub fn new(size_ms: i64, advance_ms: i64) -> Self {
        let size_ms = size_ms.max(1);
        Hopping { size_ms, advance_ms: advance_ms.clamp(1, size_ms) }
    }

    /// The windows holding `timestamp_ms`, earliest start first (`ceil(size / advance)` or one
    /// fewer of them).
    pub fn windows_of(&self, timestamp_ms: i64) -> impl Iterator<Item = Window> {
        let (size, advance) = (self.size_ms, self.advance_ms);
        // The first start strictly after `timestamp - size`, i.e. the earliest window whose end
        // is past the timestamp; the last start is the one at or before the timestamp.
        let first = timestamp_ms.saturating_sub(size).div_euclid(advance).saturating_mul(advance).saturating_add(advance);
        let last = timestamp_ms.div_euclid(advance).saturating_mul(advance);
        let count = if last < first { 0 } else { (last - first) / advance + 1 };
        (0..count).map(move |i| {
            let start = first + i * advance;
            Window { start, end: start.saturating_add(size) }
        })
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
        crate::codec::decode(self.bytes)
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

    /// Hopping windows: each timestamp is in exactly the windows that hold it (checked against
    /// a brute-force scan of every aligned start), `size / advance` of them when the size is a
    /// multiple of the advance; advance = size is tumbling.
    #[test]
    fn hopping_assignment() {
        for (size, advance) in [(60, 20), (50, 20), (60, 60), (7, 3), (10, 1)] {
            let h = Hopping::new(size, advance);
            for ts in -130..130 {
                let got: Vec<Window> = h.windows_of(ts).collect();
                let want: Vec<Window> = (-400..400)
                    .filter(|s: &i64| s.rem_euclid(advance) == 0 && *s <= ts && ts < s + size)
                    .map(|start| Window { start, end: start + size })
                    .collect();
                assert_eq!(got, want, "size {size} advance {advance} ts {ts}");
                if size % advance == 0 {
                    assert_eq!(got.len() as i64, size / advance);
                }
            }
        }
        let tumbling = Tumbling::new(60);
        assert!((-100..100).all(|ts| Hopping::new(60, 60).windows_of(ts).collect::<Vec<_>>() == vec![tumbling.window_of(ts)]));
        assert_eq!(Hopping::new(10, 50).windows_of(5).count(), 1, "advance clamped to the size");
    }
}
