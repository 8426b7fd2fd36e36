//! Stateful transforms: the [`StatefulTransform`] trait a transform implements, the [`Context`]
//! its functions get (keyed state, windows, timers, the watermark, the output), and the
//! [`Machine`] that runs a batch over the state store. The wasm entry points (`entry.rs`) and the
//! test [`Harness`](crate::Harness) drive the same machine, so a native test exercises exactly
//! the code the broker runs.
//!
//! # Event time
//! Event time is the records' own timestamps; nothing reads a clock, so a replay behaves
//! identically. The watermark is the largest timestamp seen minus the allowed lateness. After
//! each record the machine closes every window whose end the watermark has reached (calling
//! `on_window_close`, in window-end order) and then fires every due timer (`on_timer`). A record
//! whose window has already closed is late: [`Context::window_add`] says so and changes nothing.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_abi::StateCommand;

use crate::codec;
use crate::state::{key_from_part, key_part_into, time_bytes, time_from, Store, META_MAX_TS, NS_SESSIONS, NS_TIMER, NS_WINDOW};
use crate::window::{ClosedWindow, Timer, Window, WindowAdd};
use crate::{OutRecord, Output, Record};

/// A transform with keyed state. Implement it on a unit struct and export it with
/// [`stateful_transform!`](crate::stateful_transform).
pub trait StatefulTransform: 'static {
    /// Config parameters, parsed once from the spec's `config` object.
    type Config: DeserializeOwned + Send + Sync + 'static;

    /// Called for each input record, in offset order. `ctx`'s state is the record key's.
    fn process(record: &Record<'_>, ctx: &mut Context<'_>, config: &Self::Config) -> crate::Result;

    /// Called once per window when the watermark reaches its end; `ctx`'s state is the window
    /// key's. Outputs are attributed to the record that moved the watermark.
    fn on_window_close(window: &ClosedWindow<'_>, ctx: &mut Context<'_>, config: &Self::Config) -> crate::Result {
        let _ = (window, ctx, config);
        Ok(())
    }

    /// Called when the watermark reaches a timer set with [`Context::set_timer`].
    fn on_timer(timer: &Timer<'_>, ctx: &mut Context<'_>, config: &Self::Config) -> crate::Result {
        let _ = (timer, ctx, config);
        Ok(())
    }

    /// How far behind the largest timestamp seen the watermark stays (ms): records up to this
    /// much out of order still count in their window.
    fn allowed_lateness_ms(config: &Self::Config) -> i64 {
        let _ = config;
        0
    }
}

/// What a stateful function works with: the output, and state scoped to one record key.
pub struct Context<'a> {
    out: &'a mut Output,
    store: &'a mut Store,
    /// The current key in the store's layout (`k` + key, or `n`). A buffer the machine reuses
    /// for every record, as is `scratch`: no allocation per record for keys.
    key_part: &'a mut Vec<u8>,
    /// Where window and timer keys are built for a lookup.
    scratch: &'a mut Vec<u8>,
    watermark: i64,
}

impl<'a> Context<'a> {
    /// Where records are emitted.
    pub fn output(&mut self) -> &mut Output {
        self.out
    }

    /// Emits a record (see [`Output::send`]).
    pub fn send(&mut self, record: OutRecord) {
        self.out.send(record);
    }

    /// The key this context's state belongs to.
    pub fn key(&self) -> Option<&[u8]> {
        key_from_part(self.key_part).flatten()
    }

    /// Scopes the state calls that follow to `key` instead of the record's key: re-keying by a
    /// field of the value (count per `service` whatever the producer keyed by). Windows and
    /// timers set under it close with it as their key.
    pub fn set_key(&mut self, key: Option<&[u8]>) {
        key_part_into(key, self.key_part);
    }

    /// The current watermark (`i64::MIN` before the first record).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The state value of the current key.
    pub fn get<T: DeserializeOwned>(&self) -> crate::Result<Option<T>> {
        match self.store.get(self.key_part) {
            Some(bytes) => Ok(Some(codec::decode(bytes)?)),
            None => Ok(None),
        }
    }

    /// Sets the state value of the current key.
    pub fn put<T: Serialize>(&mut self, value: &T) -> crate::Result {
        self.store.update(self.key_part, |_, mut buf| {
            codec::encode_into(value, &mut buf)?;
            Ok(buf)
        })
    }

    /// Deletes the state value of the current key.
    pub fn delete(&mut self) {
        self.store.delete(self.key_part);
    }

    /// Calls [`StatefulTransform::on_timer`] for the current key once the watermark reaches
    /// `at_ms`. Setting the same time twice sets one timer.
    pub fn set_timer(&mut self, at_ms: i64) {
        timer_key_into(at_ms, self.key_part, self.scratch);
        self.store.put(self.scratch, Vec::new());
    }

    /// Cancels a timer set with [`Context::set_timer`].
    pub fn cancel_timer(&mut self, at_ms: i64) {
        timer_key_into(at_ms, self.key_part, self.scratch);
        self.store.delete(self.scratch);
    }

    /// Updates the current key's accumulator for `window` with `f` (starting from
    /// `A::default()`), unless the window has already closed.
    pub fn window_add<A, F>(&mut self, window: Window, f: F) -> crate::Result<WindowAdd>
    where
        A: Default + Serialize + DeserializeOwned,
        F: FnOnce(&mut A),
    {
        if window.end <= self.watermark {
            return Ok(WindowAdd::Late);
        }
        window_key_into(window, self.key_part, self.scratch);
        self.store.update(self.scratch, |current, mut buf| {
            let mut acc: A = match current {
                Some(bytes) => codec::decode(bytes)?,
                None => A::default(),
            };
            f(&mut acc);
            codec::encode_into(&acc, &mut buf)?;
            Ok(buf)
        })?;
        Ok(WindowAdd::Added)
    }

    /// Adds a record at `timestamp_ms` to the current key's session windows with inactivity
    /// `gap_ms`: a session is `[first timestamp, last timestamp + gap)`; the record's own
    /// `[timestamp, timestamp + gap)` merges with every open session it overlaps (accumulators
    /// combined with `merge`, earliest session first), then `f` updates the result. It closes
    /// (`on_window_close`) when the watermark reaches its end. Late if the merged session has
    /// already ended by the watermark.
    pub fn session_add<A, F, M>(&mut self, timestamp_ms: i64, gap_ms: i64, f: F, merge: M) -> crate::Result<WindowAdd>
    where
        A: Default + Serialize + DeserializeOwned,
        F: FnOnce(&mut A),
        M: Fn(&mut A, A),
    {
        let index_key = [&[NS_SESSIONS][..], self.key_part.as_slice()].concat();
        let mut open: Vec<Window> = match self.store.get(&index_key) {
            Some(bytes) => codec::decode::<Vec<(i64, i64)>>(bytes)?.into_iter().map(|(start, end)| Window { start, end }).collect(),
            None => Vec::new(),
        };
        let mut merged = Window { start: timestamp_ms, end: timestamp_ms.saturating_add(gap_ms.max(1)) };
        let (overlapping, rest): (Vec<Window>, Vec<Window>) = open.drain(..).partition(|w| w.start < merged.end && merged.start < w.end);
        for w in &overlapping {
            merged = Window { start: merged.start.min(w.start), end: merged.end.max(w.end) };
        }
        if merged.end <= self.watermark {
            return Ok(WindowAdd::Late);
        }
        let mut acc: Option<A> = None;
        for w in &overlapping {
            let key = window_key(*w, self.key_part);
            let part: A = match self.store.get(&key) {
                Some(bytes) => codec::decode(bytes)?,
                None => A::default(),
            };
            self.store.delete(&key);
            match &mut acc {
                Some(a) => merge(a, part),
                None => acc = Some(part),
            }
        }
        let mut acc = acc.unwrap_or_default();
        f(&mut acc);
        self.store.put(&window_key(merged, self.key_part), codec::encode(&acc)?);
        let mut open = rest;
        open.push(merged);
        open.sort();
        let index: Vec<(i64, i64)> = open.iter().map(|w| (w.start, w.end)).collect();
        self.store.put(&index_key, codec::encode(&index)?);
        Ok(WindowAdd::Added)
    }

    /// The current key's accumulator for an open window.
    pub fn window_get<A: DeserializeOwned>(&self, window: Window) -> crate::Result<Option<A>> {
        match self.store.get(&window_key(window, self.key_part)) {
            Some(bytes) => Ok(Some(codec::decode(bytes)?)),
            None => Ok(None),
        }
    }
}

/// Writes `window`'s key for `key_part` into `buf` (cleared first).
fn window_key_into(window: Window, key_part: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(NS_WINDOW);
    buf.extend_from_slice(&time_bytes(window.end));
    buf.extend_from_slice(&time_bytes(window.start));
    buf.extend_from_slice(key_part);
}

fn window_key(window: Window, key_part: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(17 + key_part.len());
    window_key_into(window, key_part, &mut k);
    k
}

/// Removes a closed window from its key's session index, if it was a session.
fn forget_session(store: &mut Store, key_part: &[u8], window: Window) -> crate::Result {
    let index_key = [&[NS_SESSIONS][..], key_part].concat();
    let Some(bytes) = store.get(&index_key) else { return Ok(()) };
    let mut open: Vec<(i64, i64)> = codec::decode(bytes)?;
    let before = open.len();
    open.retain(|w| *w != (window.start, window.end));
    if open.len() == before {
        return Ok(());
    }
    if open.is_empty() {
        store.delete(&index_key);
    } else {
        store.put(&index_key, codec::encode(&open)?);
    }
    Ok(())
}

/// Writes the key of a timer at `at` for `key_part` into `buf` (cleared first).
fn timer_key_into(at: i64, key_part: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.push(NS_TIMER);
    buf.extend_from_slice(&time_bytes(at));
    buf.extend_from_slice(key_part);
}

/// The state store plus the event-time bookkeeping of one instance (one input partition).
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) store: Store,
    max_ts: i64,
    /// `max_ts` as of the last commit (abort goes back to it).
    committed_max_ts: i64,
    /// The [`Context`]'s key and scratch buffers, kept across records.
    key_buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine { store: Store::default(), max_ts: i64::MIN, committed_max_ts: i64::MIN, key_buf: Vec::new(), scratch: Vec::new() }
    }
}

impl Machine {
    pub(crate) fn watermark(&self, lateness_ms: i64) -> i64 {
        self.max_ts.saturating_sub(lateness_ms.max(0))
    }

    /// Runs one record; on failure every state change it made (and its watermark move) is taken
    /// back, so the error policy handles it as if it never ran.
    pub(crate) fn run_record<T: StatefulTransform>(&mut self, record: &Record<'_>, out: &mut Output, config: &T::Config) -> crate::Result {
        let (savepoint, max_ts) = (self.store.savepoint(), self.max_ts);
        let result = self.run_record_inner::<T>(record, out, config);
        if result.is_err() {
            self.store.rollback_to(savepoint);
            self.max_ts = max_ts;
        }
        result
    }

    fn run_record_inner<T: StatefulTransform>(&mut self, record: &Record<'_>, out: &mut Output, config: &T::Config) -> crate::Result {
        let watermark = self.watermark(T::allowed_lateness_ms(config));
        key_part_into(record.key, &mut self.key_buf);
        let mut ctx =
            Context { out: &mut *out, store: &mut self.store, key_part: &mut self.key_buf, scratch: &mut self.scratch, watermark };
        T::process(record, &mut ctx, config)?;
        self.advance::<T>(record.timestamp, out, config)
    }

    /// Moves event time to at least `ts` and fires what became due.
    pub(crate) fn advance<T: StatefulTransform>(&mut self, ts: i64, out: &mut Output, config: &T::Config) -> crate::Result {
        self.max_ts = self.max_ts.max(ts);
        let watermark = self.watermark(T::allowed_lateness_ms(config));
        while let Some(key) = self.store.first_due(NS_WINDOW, watermark) {
            let (Some(end), Some(start)) = (time_from(&key[1..]), key.get(9..).and_then(time_from)) else {
                return Err("corrupt window entry in state".into());
            };
            let bytes = self.store.get(&key).map(<[u8]>::to_vec).unwrap_or_default();
            self.store.delete(&key);
            let part = key.get(17..).unwrap_or_default();
            let Some(window_key) = key_from_part(part) else { return Err("corrupt window key in state".into()) };
            forget_session(&mut self.store, part, Window { start, end })?;
            let closed = ClosedWindow { key: window_key, window: Window { start, end }, bytes: &bytes };
            self.key_buf.clear();
            self.key_buf.extend_from_slice(part);
            let mut ctx =
                Context { out: &mut *out, store: &mut self.store, key_part: &mut self.key_buf, scratch: &mut self.scratch, watermark };
            T::on_window_close(&closed, &mut ctx, config)?;
        }
        while let Some(key) = self.store.first_due(NS_TIMER, watermark) {
            let Some(at) = time_from(&key[1..]) else { return Err("corrupt timer entry in state".into()) };
            self.store.delete(&key);
            let part = key.get(9..).unwrap_or_default();
            let Some(timer_key) = key_from_part(part) else { return Err("corrupt timer key in state".into()) };
            self.key_buf.clear();
            self.key_buf.extend_from_slice(part);
            let mut ctx =
                Context { out: &mut *out, store: &mut self.store, key_part: &mut self.key_buf, scratch: &mut self.scratch, watermark };
            T::on_timer(&Timer { key: timer_key, at }, &mut ctx, config)?;
        }
        Ok(())
    }

    /// Ends a batch: records the event-time bookkeeping in the store and writes the batch's
    /// state changes and the state size into the output.
    pub(crate) fn finish_batch(&mut self, out: &mut Output) {
        if self.max_ts != self.committed_max_ts {
            self.store.put(META_MAX_TS, self.max_ts.to_le_bytes().to_vec());
        }
        self.store.write_changes(out.writer());
        out.writer().state_bytes(self.store.bytes());
    }

    pub(crate) fn command(&mut self, command: StateCommand) {
        match command {
            StateCommand::Commit => {
                self.store.commit();
                self.committed_max_ts = self.max_ts;
            }
            StateCommand::Abort => {
                self.store.abort();
                self.max_ts = self.committed_max_ts;
            }
            StateCommand::Restore(ops) => {
                // Restores come after a commit point; anything provisional is dropped first.
                self.store.abort();
                self.store.reserve(ops.len());
                for op in ops {
                    self.store.apply(op);
                }
                let max_ts = self.store.get(META_MAX_TS).and_then(|b| b.try_into().ok()).map_or(i64::MIN, i64::from_le_bytes);
                self.max_ts = max_ts;
                self.committed_max_ts = max_ts;
            }
        }
    }
}
