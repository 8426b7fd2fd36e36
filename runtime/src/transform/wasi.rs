//! The few `wasi_snapshot_preview1` functions a Rust std guest imports, provided directly with
//! `Linker::func_wrap` instead of wasmtime-wasi (which would bring the component model and ~7
//! minutes of build for features a transform must not have). The environment is deterministic:
//! no arguments, no environment variables, the clock reads the current record's timestamp,
//! randomness comes from a generator seeded with the input position, and stdout/stderr are
//! captured (a panic message ends up in the error the host reports). No files, no network: any
//! other WASI function traps when called.

use wasmtime::{Caller, Extern, Linker, Memory, StoreLimits};

/// The import module name of WASI preview 1.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// Captured stdout+stderr bytes kept per call; the rest is dropped.
pub const CAPTURED_OUTPUT_BYTES_MAX: usize = 16 * 1024;

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// What a guest's store holds: its limits and its deterministic environment.
pub struct GuestState {
    /// Memory limits for this instance.
    pub limits: StoreLimits,
    /// What `clock_time_get` returns, in milliseconds since the Unix epoch.
    pub clock_ms: i64,
    /// splitmix64 state for `random_get`.
    pub rng: u64,
    /// Text written to stdout/stderr during the current call (bounded).
    pub captured: Vec<u8>,
}

impl GuestState {
    /// A fresh state with these limits.
    pub fn new(limits: StoreLimits) -> Self {
        GuestState { limits, clock_ms: 0, rng: 0, captured: Vec::new() }
    }

    /// Reseeds the environment for a batch: deterministic in the input position.
    pub fn reset_for_batch(&mut self, clock_ms: i64, seed: u64) {
        self.clock_ms = clock_ms;
        self.rng = seed;
        self.captured.clear();
    }

    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn memory(caller: &mut Caller<'_, GuestState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn write_bytes(caller: &mut Caller<'_, GuestState>, at: i32, bytes: &[u8]) -> i32 {
    let Some(mem) = memory(caller) else { return ERRNO_FAULT };
    match mem.write(caller, at as u32 as usize, bytes) {
        Ok(()) => ERRNO_SUCCESS,
        Err(_) => ERRNO_FAULT,
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(bytes);
    Some(u32::from_le_bytes(a))
}

/// Adds the WASI functions to `linker`.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        WASI_MODULE,
        "fd_write",
        |mut caller: Caller<'_, GuestState>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> i32 {
            if fd != 1 && fd != 2 {
                return ERRNO_BADF;
            }
            let Some(mem) = memory(&mut caller) else { return ERRNO_FAULT };
            let (data, state) = mem.data_and_store_mut(&mut caller);
            let mut total: u32 = 0;
            for i in 0..iovs_len.max(0) as usize {
                let at = iovs as u32 as usize + i * 8;
                let (Some(ptr), Some(len)) = (read_u32(data, at), read_u32(data, at + 4)) else { return ERRNO_FAULT };
                let Some(chunk) = data.get(ptr as usize..(ptr as usize).saturating_add(len as usize)) else { return ERRNO_FAULT };
                let room = CAPTURED_OUTPUT_BYTES_MAX.saturating_sub(state.captured.len());
                state.captured.extend_from_slice(&chunk[..chunk.len().min(room)]);
                total = total.saturating_add(len);
            }
            write_bytes(&mut caller, nwritten, &total.to_le_bytes())
        },
    )?;
    linker.func_wrap(WASI_MODULE, "environ_sizes_get", |mut caller: Caller<'_, GuestState>, count: i32, size: i32| -> i32 {
        let e = write_bytes(&mut caller, count, &0u32.to_le_bytes());
        if e != ERRNO_SUCCESS {
            return e;
        }
        write_bytes(&mut caller, size, &0u32.to_le_bytes())
    })?;
    linker.func_wrap(WASI_MODULE, "environ_get", |_: Caller<'_, GuestState>, _environ: i32, _buf: i32| -> i32 { ERRNO_SUCCESS })?;
    linker.func_wrap(WASI_MODULE, "args_sizes_get", |mut caller: Caller<'_, GuestState>, count: i32, size: i32| -> i32 {
        let e = write_bytes(&mut caller, count, &0u32.to_le_bytes());
        if e != ERRNO_SUCCESS {
            return e;
        }
        write_bytes(&mut caller, size, &0u32.to_le_bytes())
    })?;
    linker.func_wrap(WASI_MODULE, "args_get", |_: Caller<'_, GuestState>, _argv: i32, _buf: i32| -> i32 { ERRNO_SUCCESS })?;
    linker.func_wrap(WASI_MODULE, "clock_time_get", |mut caller: Caller<'_, GuestState>, id: i32, _precision: i64, out: i32| -> i32 {
        // 0 realtime, 1 monotonic: both read the record's time, so replays see the same clock.
        if !(0..=3).contains(&id) {
            return ERRNO_INVAL;
        }
        let ns = (caller.data().clock_ms.max(0) as u64).saturating_mul(1_000_000);
        write_bytes(&mut caller, out, &ns.to_le_bytes())
    })?;
    linker.func_wrap(WASI_MODULE, "random_get", |mut caller: Caller<'_, GuestState>, buf: i32, len: i32| -> i32 {
        let len = len.max(0) as usize;
        if len > 1 << 20 {
            return ERRNO_INVAL;
        }
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            let r = caller.data_mut().next_random();
            bytes.extend_from_slice(&r.to_le_bytes());
        }
        bytes.truncate(len);
        write_bytes(&mut caller, buf, &bytes)
    })?;
    linker.func_wrap(WASI_MODULE, "sched_yield", |_: Caller<'_, GuestState>| -> i32 { ERRNO_SUCCESS })?;
    linker.func_wrap(WASI_MODULE, "proc_exit", |_: Caller<'_, GuestState>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::msg(format!("the transform called proc_exit({code})")))
    })?;
    Ok(())
}
