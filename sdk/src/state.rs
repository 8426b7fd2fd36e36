//! The state store inside a stateful guest: one ordered map of opaque keys to values, with an
//! undo log so the host can make a batch's changes final (`commit`) or take them back (`abort`),
//! and a failed record's changes are taken back alone (a savepoint per record).
//!
//! # Key layout
//! One byte names the namespace, so user state, windows, timers and bookkeeping share one map
//! (one changelog, one restore) without colliding:
//! ```text
//! k <record key>                     user state of a keyed record      (Context::get/put/delete)
//! n                                  user state of null-keyed records
//! w <end> <start> <k key | n>        a window's accumulator, ordered by window end
//! s <k key | n>                      a key's open session windows (start, end), for merging
//! t <at> <k key | n>                 a timer, ordered by due time
//! m max_ts                           the largest event time seen (drives the watermark)
//! ```
//! Times are 8 bytes, big-endian, sign bit flipped, so byte order is time order: the windows and
//! timers due at a watermark are a prefix scan, with no separate index to keep in step.
//!
//! A hash map (a fixed hasher) answers the per-record `get`/`put`; the windows and timers due at
//! a watermark come from a small index by due time (`state_index`), and the per-batch changes
//! are reported in the order the batch first touched them, so nothing observable depends on the
//! map's iteration order and a
//! replayed batch reports byte-identical changes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use sluice_abi::StateOp;

use crate::state_index::{BuildStateHasher, DueIndex};

pub(crate) const NS_KEY: u8 = b'k';
pub(crate) const NS_NULL_KEY: u8 = b'n';
pub(crate) const NS_WINDOW: u8 = b'w';
pub(crate) const NS_TIMER: u8 = b't';
pub(crate) const NS_SESSIONS: u8 = b's';
pub(crate) const META_MAX_TS: &[u8] = b"mmax_ts";

/// `t` as 8 bytes whose byte order is numeric order.
pub(crate) fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time_bytes`]; `None` if fewer than 8 bytes are given.
pub(crate) fn time_from(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// A record key in the layout above (`k` + bytes, or `n` for a null key).
pub(crate) fn key_part(key: Option<&[u8]>) -> Vec<u8> {
    match key {
        Some(k) => {
            let mut v = Vec::with_capacity(1 + k.len());
            v.push(NS_KEY);
            v.extend_from_slice(k);
            v
        }
        None => vec![NS_NULL_KEY],
    }
}

/// Decodes a key part written by [`key_part`]; `None` if it is not one.
pub(crate) fn key_from_part(part: &[u8]) -> Option<Option<&[u8]>> {
    match part.split_first() {
        Some((&NS_KEY, rest)) => Some(Some(rest)),
        Some((&NS_NULL_KEY, [])) => Some(None),
        _ => None,
    }
}

/// The map, its size in bytes, the due index and the undo log since the last commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    map: HashMap<Vec<u8>, Vec<u8>, BuildStateHasher>,
    /// Windows and timers by due time (see `state_index`): kept in step by `insert_raw`, the
    /// one place a key enters the map.
    due: DueIndex,
    /// (key, value before the change), oldest first. Every change is logged, so rolling back to
    /// any savepoint is popping entries.
    undo: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Sum of key and value lengths: what the state size cap is measured in.
    bytes: u64,
}

impl Store {
    /// The earliest window (`NS_WINDOW`) or timer (`NS_TIMER`) key due at `time`, if any.
    pub(crate) fn first_due(&mut self, namespace: u8, time: i64) -> Option<Vec<u8>> {
        let map = &self.map;
        self.due.first_due(namespace, time, |k| map.contains_key(k))
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Inserts without an undo entry; returns the previous value. One hash of the key.
    fn insert_raw(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        self.bytes += (key.len() + value.len()) as u64;
        match self.map.entry(key) {
            Entry::Occupied(mut slot) => {
                let previous = std::mem::replace(slot.get_mut(), value);
                self.bytes -= (slot.key().len() + previous.len()) as u64;
                Some(previous)
            }
            Entry::Vacant(slot) => {
                self.due.inserted(slot.key());
                slot.insert(value);
                None
            }
        }
    }

    fn remove_raw(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let previous = self.map.remove(key)?;
        self.bytes -= (key.len() + previous.len()) as u64;
        Some(previous)
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        // An update (the common case: a count in an open window) moves `key` into the undo log
        // instead of cloning it; only a new key is copied, into the map.
        if let Some(slot) = self.map.get_mut(key.as_slice()) {
            self.bytes = self.bytes + value.len() as u64 - slot.len() as u64;
            let previous = std::mem::replace(slot, value);
            self.undo.push((key, Some(previous)));
            return;
        }
        let previous = self.insert_raw(key.clone(), value);
        self.undo.push((key, previous));
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        if let Some(previous) = self.remove_raw(key) {
            self.undo.push((key.to_vec(), Some(previous)));
        }
    }

    pub(crate) fn savepoint(&self) -> usize {
        self.undo.len()
    }

    /// Takes back every change made after `savepoint`.
    pub(crate) fn rollback_to(&mut self, savepoint: usize) {
        while self.undo.len() > savepoint {
            let Some((key, previous)) = self.undo.pop() else { break };
            match previous {
                Some(p) => {
                    self.insert_raw(key, p);
                }
                None => {
                    self.remove_raw(&key);
                }
            }
        }
    }

    /// The net changes since the last commit: one operation per key whose value differs from
    /// what it was at the commit, in the order the batch first touched the keys (deterministic:
    /// a replayed batch touches them in the same order). Last write wins within a batch, so a
    /// key updated by 100 records of a batch costs one changelog record.
    ///
    /// A hash set finds each key's first undo entry (its value at the commit); an ordered map
    /// did the same with ~10 byte-wise key comparisons per entry, a visible share of the
    /// per-record cost in wasm.
    pub(crate) fn delta(&self) -> Vec<StateOp> {
        let mut seen: HashSet<&[u8], BuildStateHasher> = HashSet::with_capacity_and_hasher(self.undo.len(), BuildStateHasher::default());
        self.undo
            .iter()
            .filter(|(key, _)| seen.insert(key.as_slice()))
            .filter_map(|(key, before)| {
                let now = self.get(key);
                (now != before.as_deref()).then(|| match now {
                    Some(v) => StateOp::Put { key: key.clone(), value: v.to_vec() },
                    None => StateOp::Delete { key: key.clone() },
                })
            })
            .collect()
    }

    pub(crate) fn commit(&mut self) {
        self.undo.clear();
    }

    pub(crate) fn abort(&mut self) {
        self.rollback_to(0);
    }

    /// Applies a restored operation: no undo entry (restores are final).
    pub(crate) fn apply(&mut self, op: StateOp) {
        match op {
            StateOp::Put { key, value } => {
                self.insert_raw(key, value);
            }
            StateOp::Delete { key } => {
                self.remove_raw(&key);
            }
        }
    }

    /// Room for `additional` more entries (a restore knows its size up front).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Net deltas: a key changed and changed back reports nothing; rollback restores values and
    /// the byte count exactly.
    #[test]
    fn delta_rollback_and_bytes() {
        let mut s = Store::default();
        s.put(b"a".to_vec(), b"1".to_vec());
        s.commit();
        assert_eq!(s.bytes(), 2);
        s.put(b"a".to_vec(), b"22".to_vec());
        s.put(b"b".to_vec(), b"x".to_vec());
        s.delete(b"b");
        let sp = s.savepoint();
        s.put(b"c".to_vec(), b"3".to_vec());
        assert_eq!(s.delta(), vec![StateOp::Put { key: b"a".to_vec(), value: b"22".to_vec() }, StateOp::Put { key: b"c".to_vec(), value: b"3".to_vec() }]);
        s.rollback_to(sp);
        assert_eq!(s.delta(), vec![StateOp::Put { key: b"a".to_vec(), value: b"22".to_vec() }]);
        s.abort();
        assert_eq!((s.get(b"a"), s.get(b"c"), s.bytes(), s.len()), (Some(&b"1"[..]), None, 2, 1));
        s.delete(b"a");
        assert_eq!(s.delta(), vec![StateOp::Delete { key: b"a".to_vec() }]);
        assert_eq!(s.bytes(), 0);
    }

    /// Time bytes sort like the times they encode, negative ones included.
    #[test]
    fn time_bytes_sort_numerically() {
        let times = [i64::MIN, -5, -1, 0, 1, 60_000, i64::MAX];
        for w in times.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]));
        }
        for t in times {
            assert_eq!(time_from(&time_bytes(t)), Some(t));
        }
        assert_eq!(key_from_part(&key_part(Some(b"x"))), Some(Some(&b"x"[..])));
        assert_eq!(key_from_part(&key_part(None)), Some(None));
    }
}
