//! The one wasmtime [`Engine`] shared by every transform: Cranelift, a pooling instance allocator
//! sized by [`EngineLimits`], epoch interruption driven by one ticker thread, and wasmtime's
//! on-disk cache of compiled code (keyed by a hash of the module bytes and the engine's settings),
//! so a restart does not recompile.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::TransformError;

/// How often the ticker advances the engine's epoch. A time limit is rounded up to whole ticks,
/// so a runaway guest is stopped at most one tick after its limit.
pub const EPOCH_TICK_MS: u64 = 10;
/// Set (to anything) to write a perf map of compiled wasm, so `perf record` / `perf report` name
/// guest functions (profiling stateful transforms: `bench/README.md`).
pub const PERFMAP_ENV: &str = "SLUICE_WASM_PERFMAP";

/// Limits of the shared instance pool.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Live instances at once (one per running input partition per transform, plus the one a
    /// deploy's validation uses).
    pub instances_max: u32,
    /// The largest memory limit a transform may ask for; each pool slot reserves this much
    /// address space (not RAM).
    pub memory_bytes_max: u64,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits { instances_max: 512, memory_bytes_max: 1 << 30 }
    }
}

/// The engine and its epoch ticker. Dropping it stops the ticker.
pub struct TransformEngine {
    engine: Engine,
    limits: EngineLimits,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl TransformEngine {
    /// Builds the engine, caching compiled code under `cache_dir`.
    pub fn new(cache_dir: &Path, limits: EngineLimits) -> Result<Self, TransformError> {
        let engine_error = |what: &str, e: wasmtime::Error| TransformError::Engine { reason: format!("{what}: {e:#}") };
        std::fs::create_dir_all(cache_dir).map_err(|source| TransformError::Io { op: "create", path: cache_dir.to_path_buf(), source })?;
        let mut cache_config = CacheConfig::new();
        cache_config.with_directory(cache_dir);
        let cache = Cache::new(cache_config).map_err(|e| engine_error("compiled-code cache", e))?;

        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(limits.instances_max)
            .total_memories(limits.instances_max)
            .total_tables(limits.instances_max)
            .max_memory_size(usize::try_from(limits.memory_bytes_max).unwrap_or(usize::MAX));
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .cache(Some(cache))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // A deep recursion traps instead of overflowing the broker's thread stack.
            .max_wasm_stack(1 << 20);
        if std::env::var_os(PERFMAP_ENV).is_some() {
            // Names compiled wasm functions in `perf report` (/tmp/perf-<pid>.map).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| engine_error("configuration", e))?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (engine.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
                        engine.increment_epoch();
                    }
                })
                .map_err(|source| TransformError::Io { op: "spawn epoch ticker", path: cache_dir.to_path_buf(), source })?
        };
        Ok(TransformEngine { engine, limits, stop, ticker: Some(ticker) })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The pool's limits.
    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Epoch ticks that cover `time_ms` (at least one).
    pub fn ticks_for(time_ms: u64) -> u64 {
        time_ms.div_ceil(EPOCH_TICK_MS).max(1)
    }
}

impl Drop for TransformEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}
