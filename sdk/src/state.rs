//! The state store inside a stateful guest: one hash table of opaque keys to values, with an
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
//! A hash table (a fixed hasher; each slot keeps its key's hash, so growing the table never
//! rereads the keys) answers the per-record `get`/`put`/`update` in one probe; the windows and timers due at
//! a watermark come from a small index by due time (`state_index`), and the per-batch changes
//! are reported in the order the batch first touched them, so nothing observable depends on the
//! map's iteration order and a
//! replayed batch reports byte-identical changes.

use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::{HashSet, HashTable};
use sluice_abi::{OutputWriter, StateOp};

use crate::state_index::{BuildStateHasher, DueIndex};

pub(crate) const NS_KEY: u8 = b'k';
pub(crate) const NS_NULL_KEY: u8 = b'n';
pub(crate) const NS_WINDOW: u8 = b'w';
pub(crate) const NS_TIMER: u8 = b't';
pub(crate) const NS_SESSIONS: u8 = b's';
pub(crate) const META_MAX_TS: &[u8] = b"mmax_ts";

/// A stored key. Shared (`Arc`) between the map, the undo log and the due index, so an update
/// or a delete logs its key without copying it, and a new key is allocated once. (`Arc`, not
/// `Rc`: the host `Harness` holding a store stays `Send`; in a single-threaded wasm guest the
/// count updates are plain adds.)
pub(crate) type Key = Arc<[u8]>;

/// `t` as 8 bytes whose byte order is numeric order.
pub(crate) fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// The inverse of [`time_bytes`]; `None` if fewer than 8 bytes are given.
pub(crate) fn time_from(bytes: &[u8]) -> Option<i64> {
    let b: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

/// Writes a record key in the layout above (`k` + bytes, or `n` for a null key) into `buf`
/// (cleared first): the per-record key buffer is reused, not allocated.
pub(crate) fn key_part_into(key: Option<&[u8]>, buf: &mut Vec<u8>) {
    buf.clear();
    match key {
        Some(k) => {
            buf.push(NS_KEY);
            buf.extend_from_slice(k);
        }
        None => buf.push(NS_NULL_KEY),
    }
}

/// A record key in the layout above, in a new buffer.
pub(crate) fn key_part(key: Option<&[u8]>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + key.map_or(0, <[u8]>::len));
    key_part_into(key, &mut buf);
    buf
}

/// Decodes a key part written by [`key_part`]; `None` if it is not one.
pub(crate) fn key_from_part(part: &[u8]) -> Option<Option<&[u8]>> {
    match part.split_first() {
        Some((&NS_KEY, rest)) => Some(Some(rest)),
        Some((&NS_NULL_KEY, [])) => Some(None),
        _ => None,
    }
}

/// Value buffers kept for reuse after a commit, at most: enough for one batch's updates.
const SPARE_VALUES_MAX: usize = 1 << 14;

/// One map entry, with its key's hash: growing the table rehashes from `hash` without reading
/// the key (a cache miss per entry at 1M keys, ~15% of a 1M-key `windowed-count` run when
/// the map rehashed its keys), and a probe compares hashes before it dereferences a key.
#[derive(Debug, Clone)]
struct Slot {
    hash: u64,
    key: Key,
    value: Vec<u8>,
}

fn hash_of(key: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    BuildStateHasher::default().hash_one(key)
}

/// The map, its size in bytes, the due index and the undo log since the last commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    map: HashTable<Slot>,
    /// Windows and timers by due time (see `state_index`): kept in step by the two places a key
    /// enters the map (`insert_raw`, `update`).
    due: DueIndex,
    /// (key, value before the change), oldest first. Every change is logged, so rolling back to
    /// any savepoint is popping entries.
    undo: Vec<(Key, Option<Vec<u8>>)>,
    /// Replaced values freed by a commit, handed out again by `update`: an update then reuses
    /// a buffer instead of a malloc/free pair per record.
    spare: Vec<Vec<u8>>,
    /// Sum of key and value lengths: what the state size cap is measured in.
    bytes: u64,
}

impl Store {
    /// The earliest window (`NS_WINDOW`) or timer (`NS_TIMER`) key due at `time`, if any.
    pub(crate) fn first_due(&mut self, namespace: u8, time: i64) -> Option<Key> {
        let map = &self.map;
        self.due.first_due(namespace, time, |k| {
            let hash = hash_of(k);
            map.find(hash, |s| s.hash == hash && *s.key == *k).is_some()
        })
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = hash_of(key);
        self.map.find(hash, |s| s.hash == hash && *s.key == *key).map(|s| s.value.as_slice())
    }

    /// Inserts without an undo entry; returns the previous value.
    fn insert_raw(&mut self, key: Key, value: Vec<u8>) -> Option<Vec<u8>> {
        let hash = hash_of(&key);
        self.bytes += (key.len() + value.len()) as u64;
        match self.map.entry(hash, |s| s.hash == hash && s.key == key, |s| s.hash) {
            Entry::Occupied(mut slot) => {
                let previous = std::mem::replace(&mut slot.get_mut().value, value);
                self.bytes -= (key.len() + previous.len()) as u64;
                Some(previous)
            }
            Entry::Vacant(slot) => {
                self.due.inserted(&key);
                slot.insert(Slot { hash, key, value });
                None
            }
        }
    }

    fn remove_raw(&mut self, key: &[u8]) -> Option<(Key, Vec<u8>)> {
        let hash = hash_of(key);
        let slot = self.map.find_entry(hash, |s| s.hash == hash && *s.key == *key).ok()?.remove().0;
        self.bytes -= (slot.key.len() + slot.value.len()) as u64;
        Some((slot.key, slot.value))
    }

    /// Sets `key` to `value`.
    pub(crate) fn put(&mut self, key: &[u8], value: Vec<u8>) {
        // `update` fails only if `make` does.
        let _ = self.update(key, |_, _| Ok(value));
    }

    /// Sets `key` to what `make` builds from its current value (`None`: absent) into an empty
    /// buffer: a read-modify-write (a window's count) in one hash and one probe. An update logs
    /// the stored key (shared, not copied); only a new key is allocated, once. Nothing changes
    /// if `make` fails.
    pub(crate) fn update(&mut self, key: &[u8], make: impl FnOnce(Option<&[u8]>, Vec<u8>) -> crate::Result<Vec<u8>>) -> crate::Result {
        let hash = hash_of(key);
        let buf = self.spare.pop().unwrap_or_default();
        match self.map.entry(hash, |s| s.hash == hash && *s.key == *key, |s| s.hash) {
            Entry::Occupied(mut slot) => {
                let value = make(Some(&slot.get().value), buf)?;
                let slot = slot.get_mut();
                self.bytes = self.bytes + value.len() as u64 - slot.value.len() as u64;
                let previous = std::mem::replace(&mut slot.value, value);
                self.undo.push((Arc::clone(&slot.key), Some(previous)));
            }
            Entry::Vacant(slot) => {
                let value = make(None, buf)?;
                let key: Key = Arc::from(key);
                self.bytes += (key.len() + value.len()) as u64;
                self.due.inserted(&key);
                self.undo.push((Arc::clone(&key), None));
                slot.insert(Slot { hash, key, value });
            }
        }
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        if let Some((key, previous)) = self.remove_raw(key) {
            self.undo.push((key, Some(previous)));
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

    /// The net changes since the last commit, as `f(key, value now)` (`None`: deleted): one call
    /// per key whose value differs from what it was at the commit, in the order the batch first
    /// touched the keys (deterministic: a replayed batch touches them in the same order). Last
    /// write wins within a batch, so a key updated by 100 records of a batch costs one
    /// changelog record.
    ///
    /// A hash set finds each key's first undo entry (its value at the commit); an ordered map
    /// did the same with ~10 byte-wise key comparisons per entry, a visible share of the
    /// per-record cost in wasm.
    pub(crate) fn for_each_change(&self, mut f: impl FnMut(&[u8], Option<&[u8]>)) {
        let mut seen: HashSet<&[u8], BuildStateHasher> = HashSet::with_capacity_and_hasher(self.undo.len(), BuildStateHasher::default());
        for (key, before) in &self.undo {
            if !seen.insert(key) {
                continue;
            }
            let now = self.get(key);
            if now != before.as_deref() {
                f(key, now);
            }
        }
    }

    /// [`Store::for_each_change`] into the output buffer: no per-change allocation.
    pub(crate) fn write_changes(&self, writer: &mut OutputWriter) {
        self.for_each_change(|key, now| match now {
            Some(value) => writer.state_put(key, value),
            None => writer.state_delete(key),
        });
    }

    /// [`Store::for_each_change`] as operations (tests).
    #[cfg(test)]
    pub(crate) fn delta(&self) -> Vec<StateOp> {
        let mut ops = Vec::new();
        self.for_each_change(|key, now| {
            ops.push(match now {
                Some(v) => StateOp::Put { key: key.to_vec(), value: v.to_vec() },
                None => StateOp::Delete { key: key.to_vec() },
            })
        });
        ops
    }

    pub(crate) fn commit(&mut self) {
        for (_, previous) in self.undo.drain(..) {
            if let Some(mut value) = previous.filter(|_| self.spare.len() < SPARE_VALUES_MAX) {
                value.clear();
                self.spare.push(value);
            }
        }
    }

    pub(crate) fn abort(&mut self) {
        self.rollback_to(0);
    }

    /// Applies a restored operation: no undo entry (restores are final).
    pub(crate) fn apply(&mut self, op: StateOp) {
        match op {
            StateOp::Put { key, value } => {
                self.insert_raw(Arc::from(key), value);
            }
            StateOp::Delete { key } => {
                self.remove_raw(&key);
            }
        }
    }

    /// Room for `additional` more entries (a restore knows its size up front).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional, |s| s.hash);
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
        s.put(b"a", b"1".to_vec());
        s.commit();
        assert_eq!(s.bytes(), 2);
        s.put(b"a", b"22".to_vec());
        s.put(b"b", b"x".to_vec());
        s.delete(b"b");
        let sp = s.savepoint();
        s.put(b"c", b"3".to_vec());
        assert_eq!(
            s.delta(),
            vec![StateOp::Put { key: b"a".to_vec(), value: b"22".to_vec() }, StateOp::Put { key: b"c".to_vec(), value: b"3".to_vec() }]
        );
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
