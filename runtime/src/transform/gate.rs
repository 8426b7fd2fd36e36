//! A transform's `parallelism`: at most N of its runners (one per input partition) run a batch
//! in the guest at the same time, so one heavy transform on a many-partition topic cannot take
//! every core. The gate wraps the guest call; the runner loop itself is unchanged.
//!
//! Rejected alternative: fewer runners, each owning several partitions. It would couple
//! partitions' progress (one slow partition delays the others in its runner) and change the
//! checkpoint layout; a semaphore bounds the CPU used with neither cost.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The permits of one deployed transform version, and how many batches are in the guest now.
#[derive(Debug)]
pub struct Gate {
    /// `None`: unbounded (one runner per partition, all may run at once).
    semaphore: Option<Semaphore>,
    /// Batches in the guest right now (for the peak counter).
    active: AtomicU64,
    /// The most batches ever in the guest at once, since deploy: what a test (or an operator)
    /// reads to see the bound hold.
    peak: AtomicU64,
}

/// Held while a batch runs in the guest; dropping it lets the next runner in.
pub struct Entered<'a> {
    gate: &'a Gate,
    _permit: Option<SemaphorePermit<'a>>,
}

impl Gate {
    /// A gate admitting `parallelism` batches at once (`None`: any number).
    pub fn new(parallelism: Option<u32>) -> Gate {
        let semaphore = parallelism.map(|n| Semaphore::new(usize::try_from(n.max(1)).unwrap_or(1)));
        Gate { semaphore, active: AtomicU64::new(0), peak: AtomicU64::new(0) }
    }

    /// Waits for a permit. The semaphore is never closed, so waiting only ends with a permit.
    pub async fn enter(&self) -> Entered<'_> {
        let permit = match &self.semaphore {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        let now = self.active.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        Entered { gate: self, _permit: permit }
    }

    /// The most batches that were in the guest at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Acquire)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.gate.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Eight tasks that each hold the gate across a yield: a gate of 2 never lets a third in,
    /// and an unbounded gate lets all of them overlap (so the bounded peak is the bound's doing).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gate_bounds_concurrent_batches() {
        for (parallelism, want) in [(Some(2), 2), (None, 8)] {
            let gate = Arc::new(Gate::new(parallelism));
            let barrier = Arc::new(tokio::sync::Barrier::new(want as usize));
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let (gate, barrier) = (Arc::clone(&gate), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        let _in = gate.enter().await;
                        // Everyone admitted waits here until `want` are in at once.
                        barrier.wait().await;
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(gate.peak(), want, "parallelism {parallelism:?}");
        }
    }
}
