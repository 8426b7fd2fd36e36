#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// The README (the crate docs) shows a complete transform crate, its unit tests included.
#![allow(clippy::test_attr_in_doctest)]

mod codec;
mod entry;
mod harness;
mod logging;
mod output;
mod record;
mod state;
mod state_index;
mod stateful;
mod window;

pub use harness::{Fed, Harness};
pub use logging::{__log as __log_impl, take_logs, Level, LogEntry};
pub use output::{OutRecord, Output};
pub use record::{Header, Record};
pub use sluice_abi::{Emitted, Inherit, RecordError, StateOp};
pub use stateful::{Context, StatefulTransform};
pub use window::{ClosedWindow, Hopping, Timer, Tumbling, Window, WindowAdd};

/// The error a transform function returns for a record it cannot handle. The broker applies the
/// transform's error policy to that record (retry, dead-letter, skip or halt); the rest of the
/// batch is unaffected.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// `Result<T, sluice_sdk::Error>`.
pub type Result<T = ()> = std::result::Result<T, Error>;

/// What the entry macro expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::entry::{alloc, init, process, process_native, process_stateful, state_command};
}

/// Makes a function the transform's entry point.
///
/// - `transform!(f)` with `fn f(record: &Record, out: &mut Output) -> Result`.
/// - `transform!(f, Config)` with `fn f(record: &Record, out: &mut Output, config: &Config) -> Result`,
///   where `Config: serde::de::DeserializeOwned + Send + Sync + 'static` is parsed once from the
///   transform's config parameters (a JSON object); a config that does not parse fails the deploy.
///
/// On `wasm32` it writes the ABI exports (`sluice_transform_v1_*`); on other targets it expands
/// to nothing, so the same crate unit-tests natively with `cargo test`.
#[macro_export]
macro_rules! transform {
    ($f:path) => {
        $crate::transform!(@exports |record: &$crate::Record<'_>, out: &mut $crate::Output, _config: &$crate::NoConfig| $f(record, out), $crate::NoConfig);
    };
    ($f:path, $config:ty) => {
        $crate::transform!(@exports |record: &$crate::Record<'_>, out: &mut $crate::Output, config: &$config| $f(record, out, config), $config);
    };
    (@exports $call:expr, $config:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // `no_mangle` is how a core module exports a function; the names are the ABI's.
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v1_alloc(len: i32) -> i32 {
                $crate::__private::alloc(len)
            }
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v1_init(ptr: i32, len: i32) -> i64 {
                $crate::__private::init::<$config>(ptr, len)
            }
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v1_process(ptr: i32, len: i32) -> i64 {
                $crate::__private::process::<$config>(&$call, ptr, len)
            }
        };
    };
}

/// Makes a [`StatefulTransform`] the module's entry point (ABI v2: keyed state restored by the
/// broker from a changelog, exactly once across crashes).
///
/// `stateful_transform!(MyTransform)` where `MyTransform: StatefulTransform`. On `wasm32` it
/// writes the exports (`sluice_transform_v2_*`); elsewhere it expands to nothing, and
/// [`Harness`] runs the transform in tests.
#[macro_export]
macro_rules! stateful_transform {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v2_alloc(len: i32) -> i32 {
                $crate::__private::alloc(len)
            }
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v2_init(ptr: i32, len: i32) -> i64 {
                $crate::__private::init::<<$t as $crate::StatefulTransform>::Config>(ptr, len)
            }
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v2_process(ptr: i32, len: i32) -> i64 {
                $crate::__private::process_stateful::<$t>(ptr, len)
            }
            #[allow(unsafe_code)]
            #[no_mangle]
            extern "C" fn sluice_transform_v2_state(ptr: i32, len: i32) -> i64 {
                $crate::__private::state_command(ptr, len)
            }
        };
    };
}

/// The config type of a transform without config parameters: accepts any JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoConfig;

impl<'de> serde::Deserialize<'de> for NoConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoConfig)
    }
}
