//! The flusher: a fixed set of threads that make appended records durable for every partition
//! under `flush.policy=batch`, then advance their high watermarks.
//!
//! Why not a blocking task per Produce request: at 50 MB/s over 8 partitions librdkafka sends
//! thousands of small Produce requests a second (one per partition). A `spawn_blocking` fsync per
//! request, each partition's group commit coalescing only the callers queued behind its lock, kept
//! the one broker core switching between hundreds of blocked threads (and answering acks=1
//! requests late), and woke long-poll fetches once per request. Here a produce only marks its
//! partition dirty (one entry per partition, so the queue is bounded by the partition count) and,
//! for acks=all, parks a waiter. A flusher thread takes a dirty partition, fsyncs it up to its log
//! end at that moment, publishes its new high watermark once, and answers the waiters registered
//! before it started. Appends that arrive while a partition is being flushed mark it dirty again,
//! and it is taken again when that flush ends: group commit per partition, across requests.
//!
//! The flusher thread takes every dirty partition not already being flushed as one round. A round
//! of one partition fsyncs that partition's files. A round of several syncs each filesystem they
//! live on once (`log::sync_filesystem`: `syncfs`, then one `fdatasync` for the device flush)
//! instead of an `fdatasync` each: at 8 partitions that was thousands of device flushes a second,
//! each a VM exit and an inode write on this disk, and a third of the broker's core
//! (bench/README.md). Partitions that become dirty while a round is in progress make up the next
//! round, so rounds grow with the load and the flush rate stays bounded by the sync's latency.
//!
//! **Architecture Invariant:** the flusher knows nothing of logs or Kafka: it calls
//! [`FlushTarget`]'s methods, syncs filesystems through the files targets hand it, and compares
//! offsets. Partitions decide what a flush does.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::BrokerError;
use crate::log::{sync_filesystem, LogError};

/// Something the flusher makes durable: a partition.
pub trait FlushTarget: Send + Sync + 'static {
    /// fsyncs everything appended so far, publishes the new high watermark and returns the
    /// durable offset (exclusive). Blocking.
    fn flush_round(&self) -> Result<i64, BrokerError>;

    /// Begins a flush that a sync of the target's filesystem completes (a round shared with
    /// other targets): notes what such a sync covers and returns the filesystem's device id and
    /// a file on it. `None`: flush this one alone with [`FlushTarget::flush_round`].
    fn begin_shared(&self) -> Option<(u64, Arc<File>)> {
        None
    }

    /// Ends a flush begun by [`FlushTarget::begin_shared`] once its filesystem was synced
    /// (`synced` says how that went): publishes the new high watermark and returns the durable
    /// offset, or the error that poisoned the target. Blocking.
    fn end_shared(&self, synced: Result<(), &io::Error>) -> Result<i64, BrokerError> {
        synced.map_err(|e| BrokerError::Task { what: "flush".into(), reason: e.to_string() })?;
        self.flush_round()
    }
}

/// Flusher threads, so the most rounds in progress at once. One: rounds then take everything
/// that became dirty during the previous one. Measured at 8 partitions, 50 MB/s of small produce
/// requests (`bench/README.md`): with 8 threads each round held ~1 partition (21k fsync calls in
/// 5 s, broker 3.3 CPU s, e2e p99 7.8-11.5 ms); with 2, 13k (2.7 s); with 1, 8k (2.3 s, p99
/// 6.3-6.5 ms). A sync of one filesystem makes every partition on it wait for the disk anyway.
pub const FLUSHER_THREADS: usize = 1;

/// Answered once the offset an acks=all request waits for is durable (or cannot become so).
pub type Durable = oneshot::Receiver<Result<(), BrokerError>>;

/// The handle partitions hold. Dropping the last one stops the threads once nothing is queued.
pub struct Flusher {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Partitions with appends not yet flushed or being flushed, keyed by identity
    /// (`Arc::as_ptr`): a topic deleted and created again under the same name is a different
    /// partition. At most one entry per partition.
    entries: HashMap<usize, Entry>,
    /// Dirty partitions not being flushed, oldest first.
    ready: VecDeque<usize>,
    /// Set when the last handle is dropped: drain, then stop.
    closed: bool,
}

struct Entry {
    target: Arc<dyn FlushTarget>,
    /// acks=all requests waiting on this partition. At most one per in-flight Produce request
    /// touching it, so bounded by connections × in-flight requests.
    waiters: Vec<Waiter>,
    /// A thread is flushing it now.
    flushing: bool,
    /// Appended to since its flush started (or not being flushed and queued in `ready`).
    dirty: bool,
}

struct Waiter {
    /// Offset (exclusive) that must be durable.
    end: i64,
    done: oneshot::Sender<Result<(), BrokerError>>,
}

fn key_of(target: &Arc<dyn FlushTarget>) -> usize {
    Arc::as_ptr(target).cast::<()>() as usize
}

impl Flusher {
    /// Starts the flusher threads.
    pub fn start() -> Result<Arc<Flusher>, BrokerError> {
        let shared = Arc::new(Shared { queue: Mutex::new(Queue::default()), wake: Condvar::new() });
        for i in 0..FLUSHER_THREADS {
            let for_thread = Arc::clone(&shared);
            let started = std::thread::Builder::new().name(format!("sluice-flusher-{i}")).spawn(move || keep_running(&for_thread));
            if let Err(e) = started {
                // The threads already started stop once the queue is closed.
                shared.queue.lock().closed = true;
                shared.wake.notify_all();
                return Err(BrokerError::Task { what: "flusher thread".into(), reason: e.to_string() });
            }
        }
        Ok(Arc::new(Flusher { shared }))
    }

    /// Marks `target` dirty: a flusher thread fsyncs it. With `wait`, returns a receiver answered
    /// once offset `end` (exclusive) is durable. Never blocks beyond a short lock.
    pub fn request(&self, target: Arc<dyn FlushTarget>, end: i64, wait: bool) -> Option<Durable> {
        let key = key_of(&target);
        let mut queue = self.shared.queue.lock();
        let entry = queue.entries.entry(key).or_insert_with(|| Entry { target, waiters: Vec::new(), flushing: false, dirty: false });
        let durable = wait.then(|| {
            let (done, durable) = oneshot::channel();
            entry.waiters.push(Waiter { end, done });
            durable
        });
        // Already dirty: queued, or to be queued again when its flush ends. Being flushed and
        // clean: its flush may have read the log end before this append, so mark it dirty and
        // let the flushing thread queue it again.
        let newly_ready = !entry.dirty && !entry.flushing;
        entry.dirty = true;
        if newly_ready {
            queue.ready.push_back(key);
            drop(queue);
            self.shared.wake.notify_one();
        }
        durable
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // No join: the last handle can be dropped on a flusher thread itself (it holds the
        // partition it flushes, and partitions hold handles).
        self.shared.queue.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// Runs [`run`] until the queue closes. A panic outside a flush step (which [`caught`] contains),
/// such as in a partition's drop, must not end the thread: every acks=all request and every HWM
/// advance of the broker waits on it. The round in progress lost its waiters in the unwind (each
/// requester is told the flusher stopped), so every known partition is queued again and the loop
/// goes on.
fn keep_running(shared: &Shared) {
    while std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(shared))).is_err() {
        tracing::error!("the flusher panicked between flushes; flushing every partition again");
        let mut queue = shared.queue.lock();
        let Queue { entries, ready, .. } = &mut *queue;
        ready.clear();
        for (key, entry) in entries.iter_mut() {
            entry.flushing = false;
            entry.dirty = true;
            ready.push_back(*key);
        }
    }
}

/// A partition taken for a round: its queue key, itself, and the waiters its flush answers.
type Taken = (usize, Arc<dyn FlushTarget>, Vec<Waiter>);

/// One flusher thread: take every dirty partition as a round, flush it, answer the waiters,
/// repeat; stop once closed and nothing is left.
fn run(shared: &Shared) {
    let mut queue = shared.queue.lock();
    loop {
        if queue.ready.is_empty() {
            if queue.closed && queue.entries.is_empty() {
                return;
            }
            shared.wake.wait(&mut queue);
            continue;
        }
        let mut round: Vec<Taken> = Vec::with_capacity(queue.ready.len());
        while let Some(key) = queue.ready.pop_front() {
            let Some(entry) = queue.entries.get_mut(&key) else { continue };
            entry.flushing = true;
            entry.dirty = false;
            // Every waiter registered so far had its append published before it registered, so
            // this flush (which reads the log end after this point) covers it.
            round.push((key, Arc::clone(&entry.target), std::mem::take(&mut entry.waiters)));
        }
        drop(queue);

        let targets: Vec<&dyn FlushTarget> = round.iter().map(|(_, target, _)| target.as_ref()).collect();
        let outcomes = flush_together(&targets);
        for ((_, _, waiters), outcome) in round.iter_mut().zip(&outcomes) {
            answer(std::mem::take(waiters), outcome);
            if let Err(e) = outcome {
                tracing::error!("flush failed: {e}");
            }
        }

        queue = shared.queue.lock();
        for (key, _, _) in &round {
            let requeue = match queue.entries.get_mut(key) {
                Some(entry) => {
                    entry.flushing = false;
                    entry.dirty
                }
                None => false,
            };
            if requeue {
                queue.ready.push_back(*key);
            } else {
                queue.entries.remove(key);
            }
        }
        // The targets (partitions) are dropped without the lock: a drop may drop the last
        // flusher handle, which takes the lock.
        drop(queue);
        drop(round);
        queue = shared.queue.lock();
    }
}

/// Flushes one round and returns each target's outcome, in order. One target flushes alone;
/// several share one sync per filesystem; a target that cannot share flushes alone.
fn flush_together(targets: &[&dyn FlushTarget]) -> Vec<Result<i64, BrokerError>> {
    if let [only] = targets {
        return vec![caught(|| only.flush_round())];
    }
    let began: Vec<Option<(u64, Arc<File>)>> = targets.iter().map(|t| caught(|| Ok(t.begin_shared())).ok().flatten()).collect();
    let mut synced: HashMap<u64, io::Result<()>> = HashMap::new();
    for (device, file) in began.iter().flatten() {
        synced.entry(*device).or_insert_with(|| sync_filesystem(file));
    }
    targets
        .iter()
        .zip(&began)
        .map(|(target, began)| match began.as_ref().and_then(|(device, _)| synced.get(device)) {
            Some(outcome) => caught(|| target.end_shared(outcome.as_ref().map(|_| ()))),
            None => caught(|| target.flush_round()),
        })
        .collect()
}

fn answer(waiters: Vec<Waiter>, outcome: &Result<i64, BrokerError>) {
    for waiter in waiters {
        let answer = match outcome {
            Ok(durable) if *durable >= waiter.end => Ok(()),
            // The flush read a log end past every waiter's append; a shorter log means it was
            // truncated under the waiter.
            Ok(durable) => Err(BrokerError::Task {
                what: "flush".into(),
                reason: format!("offset {} is no longer in the log (log end {durable})", waiter.end - 1),
            }),
            Err(e) => Err(copy_error(e)),
        };
        // The requester may have gone (connection closed): nothing to tell then.
        let _ = waiter.done.send(answer);
    }
}

/// One step of a partition's flush; a panic in it becomes that partition's error instead of
/// ending the thread every partition depends on (a blocking task per request used to contain it
/// the same way).
fn caught<T>(step: impl FnOnce() -> Result<T, BrokerError>) -> Result<T, BrokerError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step))
        .unwrap_or_else(|_| Err(BrokerError::Task { what: "flush".into(), reason: "the flush panicked".into() }))
}

/// A flush error for each of several waiters (`io::Error` is not `Clone`): kind and message kept,
/// so the Kafka error code is the same.
fn copy_error(e: &BrokerError) -> BrokerError {
    let copy_io = |s: &std::io::Error| std::io::Error::new(s.kind(), s.to_string());
    match e {
        BrokerError::Log { topic, partition, source } => {
            let source = match source {
                LogError::Io { op, path, source } => LogError::Io { op, path: path.clone(), source: copy_io(source) },
                LogError::StorageFull { op, path, source } => LogError::StorageFull { op, path: path.clone(), source: copy_io(source) },
                LogError::Poisoned { path, reason } => LogError::Poisoned { path: path.clone(), reason: reason.clone() },
                other => LogError::Poisoned { path: std::path::PathBuf::new(), reason: other.to_string() },
            };
            BrokerError::log(topic, *partition, source)
        }
        other => BrokerError::Task { what: "flush".into(), reason: other.to_string() },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The flusher against fake partitions whose flush can be held, so rounds are deterministic.
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A partition whose log end the test sets; a flush makes it durable. The first flush blocks
    /// until `release` is sent, so the test can queue work behind a running round.
    struct Fake {
        end: AtomicI64,
        durable: AtomicI64,
        flushes: AtomicUsize,
        fail: bool,
        hold: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
        started: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    }

    impl Fake {
        fn new(fail: bool) -> Arc<Fake> {
            Arc::new(Fake {
                end: AtomicI64::new(0),
                durable: AtomicI64::new(0),
                flushes: AtomicUsize::new(0),
                fail,
                hold: Mutex::new(None),
                started: Mutex::new(None),
            })
        }
        /// Makes the next flush signal its start and wait for the returned sender.
        fn hold_next(&self) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
            let (release, held) = std::sync::mpsc::channel();
            let (started, on_start) = std::sync::mpsc::channel();
            *self.hold.lock() = Some(held);
            *self.started.lock() = Some(started);
            (on_start, release)
        }
        fn append(&self, n: i64) -> i64 {
            self.end.fetch_add(n, Ordering::SeqCst) + n
        }
    }

    impl FlushTarget for Fake {
        fn flush_round(&self) -> Result<i64, BrokerError> {
            let end = self.end.load(Ordering::SeqCst);
            if let Some(started) = self.started.lock().take() {
                started.send(()).unwrap();
            }
            if let Some(held) = self.hold.lock().take() {
                held.recv().unwrap();
            }
            self.flushes.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                let source = std::io::Error::other("injected fsync failure");
                return Err(BrokerError::log("t", 0, LogError::Io { op: "fsync", path: "t-0".into(), source }));
            }
            self.durable.fetch_max(end, Ordering::SeqCst);
            Ok(self.durable.load(Ordering::SeqCst))
        }
    }

    fn target(f: &Arc<Fake>) -> Arc<dyn FlushTarget> {
        Arc::clone(f) as Arc<dyn FlushTarget>
    }

    #[test]
    fn requests_queued_behind_a_flush_share_the_next_one() {
        // Goal: requests arriving while their partition is being flushed cost one more flush, not
        // one each. Method: hold partition 0's first flush, send 100 requests over 8 partitions,
        // release, count partition 0's flushes; every waiter must see its offset durable.
        let flusher = Flusher::start().unwrap();
        let parts: Vec<_> = (0..8).map(|_| Fake::new(false)).collect();
        let (started, release) = parts[0].hold_next();
        parts[0].append(1);
        assert!(flusher.request(target(&parts[0]), 1, false).is_none());
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let mut waits = Vec::new();
        for i in 0..100 {
            let p = &parts[i % 8];
            let end = p.append(1);
            waits.push((i % 8, end, flusher.request(target(p), end, true).unwrap()));
        }
        release.send(()).unwrap();
        for (i, end, w) in waits {
            w.blocking_recv().unwrap().unwrap();
            assert!(parts[i].durable.load(Ordering::SeqCst) >= end, "answered before durable");
        }
        assert_eq!(parts[0].flushes.load(Ordering::SeqCst), 2, "the held flush, then one for the 13 requests queued behind it");
    }

    /// A partition that shares rounds: its log end and durable offset as in [`Fake`], and a real
    /// file to sync the filesystem through.
    struct Sharing {
        end: AtomicI64,
        durable: AtomicI64,
        /// The end noted by `begin_shared`.
        began: Mutex<Option<i64>>,
        alone: AtomicUsize,
        shared: AtomicUsize,
        file: Arc<File>,
    }

    impl FlushTarget for Sharing {
        fn flush_round(&self) -> Result<i64, BrokerError> {
            self.alone.fetch_add(1, Ordering::SeqCst);
            self.durable.fetch_max(self.end.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(self.durable.load(Ordering::SeqCst))
        }
        fn begin_shared(&self) -> Option<(u64, Arc<File>)> {
            *self.began.lock() = Some(self.end.load(Ordering::SeqCst));
            Some((7, Arc::clone(&self.file)))
        }
        fn end_shared(&self, synced: Result<(), &io::Error>) -> Result<i64, BrokerError> {
            synced.map_err(|e| BrokerError::Task { what: "sync".into(), reason: e.to_string() })?;
            self.shared.fetch_add(1, Ordering::SeqCst);
            let began = self.began.lock().take().unwrap();
            self.durable.fetch_max(began, Ordering::SeqCst);
            Ok(self.durable.load(Ordering::SeqCst))
        }
    }

    #[test]
    fn a_round_of_several_partitions_shares_one_filesystem_sync() {
        // Goal: partitions dirty at the same time are made durable by one shared round (one sync
        // of their filesystem), not a flush each, and a partition that cannot share (a fake that
        // only flushes alone) is still flushed in the same round. Method: three sharing targets and
        // one plain one, flushed together.
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(File::create(dir.path().join("segment")).unwrap());
        let sharing: Vec<Sharing> = (1..=3)
            .map(|n| Sharing {
                end: AtomicI64::new(n * 10),
                durable: AtomicI64::new(0),
                began: Mutex::new(None),
                alone: AtomicUsize::new(0),
                shared: AtomicUsize::new(0),
                file: Arc::clone(&file),
            })
            .collect();
        let plain = Fake::new(false);
        plain.append(4);
        let mut targets: Vec<&dyn FlushTarget> = sharing.iter().map(|s| s as &dyn FlushTarget).collect();
        targets.push(plain.as_ref());
        let outcomes = flush_together(&targets);
        let durable: Vec<i64> = outcomes.into_iter().map(|o| o.unwrap()).collect();
        assert_eq!(durable, vec![10, 20, 30, 4]);
        for s in &sharing {
            assert_eq!((s.shared.load(Ordering::SeqCst), s.alone.load(Ordering::SeqCst)), (1, 0), "flushed alone instead of sharing");
        }
        assert_eq!(plain.flushes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn partitions_dirtied_during_a_round_make_up_the_next_one() {
        // Goal: while one round runs, requests for other partitions queue up and are flushed
        // together when it ends, each waiter answered only once its offset is durable. Method:
        // hold partition 0's flush, dirty partitions 1-7 with acks=all waiters, release.
        let flusher = Flusher::start().unwrap();
        let parts: Vec<_> = (0..8).map(|_| Fake::new(false)).collect();
        let (started, release) = parts[0].hold_next();
        let held = flusher.request(target(&parts[0]), parts[0].append(1), true).unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let waits: Vec<_> = parts[1..]
            .iter()
            .map(|p| {
                let end = p.append(2);
                (p, end, flusher.request(target(p), end, true).unwrap())
            })
            .collect();
        release.send(()).unwrap();
        held.blocking_recv().unwrap().unwrap();
        for (p, end, w) in waits {
            w.blocking_recv().unwrap().unwrap();
            assert!(p.durable.load(Ordering::SeqCst) >= end, "answered before durable");
            assert_eq!(p.flushes.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn a_waiter_is_answered_only_after_its_offset_is_durable() {
        // Goal: acks=all never returns before the fsync. Method: hold the round and check the
        // waiter is still pending while the flush is in progress.
        let flusher = Flusher::start().unwrap();
        let p = Fake::new(false);
        let (started, release) = p.hold_next();
        let end = p.append(5);
        let mut durable = flusher.request(target(&p), end, true).unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(durable.try_recv(), Err(oneshot::error::TryRecvError::Empty)), "answered while the fsync was still running");
        release.send(()).unwrap();
        durable.blocking_recv().unwrap().unwrap();
        assert_eq!(p.durable.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn a_failed_flush_reaches_every_waiter_with_its_error() {
        // Goal: a failed fsync is reported to each acks=all request (as a storage error), never
        // acknowledged. Method: a partition whose flush fails, two waiters.
        let flusher = Flusher::start().unwrap();
        let p = Fake::new(true);
        let (started, release) = p.hold_next();
        let first = flusher.request(target(&p), p.append(1), true).unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let second = flusher.request(target(&p), p.append(1), true).unwrap();
        release.send(()).unwrap();
        for w in [first, second] {
            let e = w.blocking_recv().unwrap().unwrap_err();
            assert!(matches!(&e, BrokerError::Log { source: LogError::Io { op: "fsync", .. }, .. }), "{e}");
            assert!(e.to_string().contains("injected fsync failure"), "{e}");
        }
    }

    /// A target that panics when it is dropped, as a partition's drop could.
    struct PanicsOnDrop(Arc<Fake>);

    impl FlushTarget for PanicsOnDrop {
        fn flush_round(&self) -> Result<i64, BrokerError> {
            self.0.flush_round()
        }
    }

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("injected panic in a partition's drop");
        }
    }

    #[test]
    fn a_panic_between_flushes_does_not_stop_the_flusher() {
        // Goal: acks=all requests are still answered after the flusher thread panicked outside a
        // flush. Method: the flusher drops the last handle of a target whose drop panics (the
        // test let go of it during its flush); then another partition's waiter must be answered.
        let flusher = Flusher::start().unwrap();
        let inner = Fake::new(false);
        let (started, release) = inner.hold_next();
        let bomb: Arc<dyn FlushTarget> = Arc::new(PanicsOnDrop(Arc::clone(&inner)));
        let first = flusher.request(bomb, inner.append(1), true).unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        release.send(()).unwrap();
        first.blocking_recv().unwrap().unwrap();

        let other = Fake::new(false);
        let end = other.append(3);
        let mut answered = flusher.request(target(&other), end, true).unwrap();
        // A dead flusher never answers: poll with a deadline instead of blocking forever.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            match answered.try_recv() {
                Ok(outcome) => break outcome,
                Err(oneshot::error::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("the waiter was not answered: {e:?}"),
            }
        };
        outcome.unwrap();
        assert_eq!(other.durable.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_thread_stops_when_the_last_handle_goes() {
        // Goal: brokers opened and closed (tests, restarts) leave no flusher threads behind.
        let flusher = Flusher::start().unwrap();
        let weak = Arc::downgrade(&flusher.shared);
        drop(flusher);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while weak.strong_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(weak.strong_count(), 0, "the flusher thread still holds its queue");
    }
}
