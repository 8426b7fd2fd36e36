//! The two structures under the state store: a deterministic hasher for its hash map, and the
//! due index that finds the earliest window or timer without keeping the whole map ordered.
//!
//! # Why not one ordered map
//! An ordered map of 1M byte-string keys costs ~40 key comparisons per lookup, each a pointer
//! chase and, in wasm, a byte-by-byte `memcmp` over the shared `w<end><start>` prefix: the first
//! design spent ~70% of a 1M-key `windowed-count` run there. A hash map answers `get`/`put` in
//! one or two probes; only the windows and timers need an order, and only by due time, so they
//! get this small index instead.
//!
//! # The due index
//! Entries of the ordered namespaces (`w`, `t`) are grouped by their time prefix
//! (`w <end> <start>` or `t <at>`) in a `BTreeMap` of integer tuples (few groups: one per open
//! window or timer time); each group holds its keys (shared with the map, not copied) unsorted
//! until a scan needs its minimum, then sorted once (descending, so the minimum pops off the end).
//! Deletions are lazy: a removed entry stays in its group until a scan meets it and finds it
//! gone from the map. So the index is a superset of the map's ordered keys, and a scan checks
//! each candidate against the map; a re-added key may appear twice and is deduplicated when the
//! group is sorted. This keeps every map change O(1) for the index (a push, or nothing).

use std::collections::BTreeMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::state::{time_from, Key, NS_TIMER, NS_WINDOW};

/// FxHash's multiply-rotate over 8-byte words, with a final mix so the low bits (which
/// hashbrown uses for the bucket) depend on every input byte. Fixed, seedless: a replayed batch
/// sees the same map layout (iteration order is never observable anyway: scans use the index,
/// deltas sort their keys).
#[derive(Default, Clone, Copy)]
pub(crate) struct StateHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl StateHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for StateHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // murmur3's fmix64.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub(crate) type BuildStateHasher = BuildHasherDefault<StateHasher>;

/// The time prefix of an ordered key: namespace, then one (`t`) or two (`w`) times. Tuple order
/// equals the byte order of the encoded prefix.
type Prefix = (u8, i64, i64);

/// Bytes of the encoded prefix of namespace `ns` (`None`: not an ordered namespace).
fn prefix_len(ns: u8) -> Option<usize> {
    match ns {
        NS_WINDOW => Some(17),
        NS_TIMER => Some(9),
        _ => None,
    }
}

/// Splits an ordered key into its prefix and key part; `None` for other keys (or a key too
/// short to hold its times, which the SDK never writes).
fn split(key: &[u8]) -> Option<(Prefix, &[u8])> {
    let ns = *key.first()?;
    let len = prefix_len(ns)?;
    let t1 = time_from(key.get(1..)?)?;
    let t2 = if ns == NS_WINDOW { time_from(key.get(9..)?)? } else { 0 };
    Some(((ns, t1, t2), key.get(len..)?))
}

#[derive(Debug, Clone, Default)]
struct Group {
    /// Whole keys (shared with the map, not copied); when `sorted`, in descending order (the
    /// minimum is last). They all share the group's prefix, so comparing whole keys orders them
    /// by key part.
    keys: Vec<Key>,
    sorted: bool,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct DueIndex {
    groups: BTreeMap<Prefix, Group>,
    /// Per namespace (window, timer), a time at or below every group's first time: a lower
    /// bound, exact after a scan. `first_due` is asked after every record, and nothing is due
    /// almost always; this answers that without a B-tree search (~10% of a guest's time).
    earliest: [i64; 2],
}

impl Default for DueIndex {
    fn default() -> Self {
        DueIndex { groups: BTreeMap::new(), earliest: [i64::MAX; 2] }
    }
}

fn slot_of(ns: u8) -> usize {
    usize::from(ns == NS_TIMER)
}

impl DueIndex {
    /// Notes that `key` was inserted into the map (a no-op for unordered namespaces).
    pub(crate) fn inserted(&mut self, key: &Key) {
        if let Some((prefix, _)) = split(key) {
            let earliest = &mut self.earliest[slot_of(prefix.0)];
            *earliest = (*earliest).min(prefix.1);
            let group = self.groups.entry(prefix).or_default();
            // Pushing the new minimum keeps a sorted group sorted.
            group.sorted = group.keys.is_empty() || (group.sorted && group.keys.last().is_some_and(|last| key < last));
            group.keys.push(Arc::clone(key));
        }
    }

    /// The earliest key of namespace `ns` still in the map (`contains`), if its first time is at
    /// or before `time`. Stale candidates met on the way are dropped.
    pub(crate) fn first_due(&mut self, ns: u8, time: i64, contains: impl Fn(&[u8]) -> bool) -> Option<Key> {
        prefix_len(ns)?;
        if time < self.earliest[slot_of(ns)] {
            return None;
        }
        loop {
            let Some((&prefix, group)) = self.groups.range_mut((ns, i64::MIN, i64::MIN)..=(ns, i64::MAX, i64::MAX)).next() else {
                self.earliest[slot_of(ns)] = i64::MAX;
                return None;
            };
            if prefix.1 > time {
                self.earliest[slot_of(ns)] = prefix.1;
                return None;
            }
            if !group.sorted {
                group.keys.sort_unstable_by(|a, b| b.cmp(a));
                group.keys.dedup();
                group.sorted = true;
            }
            while let Some(key) = group.keys.last() {
                if contains(key) {
                    return Some(Arc::clone(key));
                }
                group.keys.pop();
            }
            self.groups.remove(&prefix);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::state::time_bytes;

    fn wkey(end: i64, start: i64, part: &[u8]) -> Vec<u8> {
        [&[NS_WINDOW][..], &time_bytes(end), &time_bytes(start), part].concat()
    }

    /// The index yields live keys in byte order, skips deleted ones and re-added duplicates,
    /// and stops at the given time.
    #[test]
    fn yields_live_keys_in_order() {
        let mut index = DueIndex::default();
        let mut live: HashSet<Vec<u8>> = HashSet::new();
        for key in [wkey(20, 10, b"kb"), wkey(10, 0, b"kz"), wkey(10, 0, b"ka"), wkey(10, -5, b"kq"), wkey(10, 0, b"kb")] {
            index.inserted(&Key::from(key.as_slice()));
            live.insert(key);
        }
        live.remove(&wkey(10, 0, b"kb"));
        index.inserted(&Key::from(wkey(10, 0, b"ka")));
        let mut seen = Vec::new();
        while let Some(key) = index.first_due(NS_WINDOW, 10, |k| live.contains(k)) {
            live.remove(&*key);
            seen.push(key.to_vec());
        }
        assert_eq!(seen, vec![wkey(10, -5, b"kq"), wkey(10, 0, b"ka"), wkey(10, 0, b"kz")]);
        assert_eq!(index.first_due(NS_WINDOW, 20, |k| live.contains(k)).as_deref(), Some(&wkey(20, 10, b"kb")[..]));
        assert_eq!(index.first_due(NS_TIMER, i64::MAX, |k| live.contains(k)), None);
    }

    /// The "nothing is due yet" shortcut never hides a due key: an insert below the cached
    /// earliest time lowers it, and draining a namespace resets it.
    #[test]
    fn earliest_shortcut_follows_inserts_and_drains() {
        let mut index = DueIndex::default();
        let add = |index: &mut DueIndex, key: Vec<u8>| index.inserted(&Key::from(key));
        add(&mut index, wkey(20, 0, b"ka"));
        assert_eq!(index.first_due(NS_WINDOW, 10, |_| true), None);
        add(&mut index, wkey(5, 0, b"kb"));
        assert_eq!(index.first_due(NS_WINDOW, 10, |_| true).as_deref(), Some(&wkey(5, 0, b"kb")[..]));
        assert_eq!(index.first_due(NS_TIMER, i64::MAX, |_| true), None, "namespaces are separate");
        let gone = |k: &[u8]| k != wkey(5, 0, b"kb").as_slice() && k != wkey(20, 0, b"ka").as_slice();
        assert_eq!(index.first_due(NS_WINDOW, 100, gone), None);
        assert_eq!(index.earliest[0], i64::MAX);
        add(&mut index, wkey(30, 0, b"kc"));
        assert_eq!(index.first_due(NS_WINDOW, 29, |_| true), None);
        assert_eq!(index.first_due(NS_WINDOW, 30, |_| true).as_deref(), Some(&wkey(30, 0, b"kc")[..]));
    }

    /// The hasher's low bits depend on the last bytes of a key (the digits of `user-0001234`).
    #[test]
    fn hash_low_bits_spread() {
        use std::hash::BuildHasher;
        let build = BuildStateHasher::default();
        let buckets: HashSet<u64> = (0..1000).map(|n| build.hash_one(wkey(60_000, 0, format!("kuser-{n:07}").as_bytes())) & 1023).collect();
        assert!(buckets.len() > 500, "{} distinct buckets of 1024", buckets.len());
    }
}
