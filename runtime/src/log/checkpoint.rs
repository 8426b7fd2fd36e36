//! The recovery checkpoint file (layout in `format`).

use std::io;
use std::path::Path;

use super::format::{CHECKPOINT_BYTES, CHECKPOINT_FILE, CHECKPOINT_MAGIC, FORMAT_VERSION};
use super::segment::{sync_dir, write_atomically};

/// What the checkpoint remembers across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// `close` finished: every segment and index on disk is complete and fsynced.
    pub clean: bool,
    /// Every segment ending at or below this offset is fsynced along with its index files.
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl Checkpoint {
    fn encode(&self) -> [u8; CHECKPOINT_BYTES] {
        let mut b = [0u8; CHECKPOINT_BYTES];
        b[0..4].copy_from_slice(&CHECKPOINT_MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        b[6] = u8::from(self.clean);
        b[8..16].copy_from_slice(&self.recovery_point.to_be_bytes());
        b[16..24].copy_from_slice(&self.log_start_offset.to_be_bytes());
        b[24..32].copy_from_slice(&self.log_end_offset.to_be_bytes());
        let crc = crc32c::crc32c(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Checkpoint, String> {
        if b.len() != CHECKPOINT_BYTES {
            return Err(format!("{} bytes, expected {CHECKPOINT_BYTES}", b.len()));
        }
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let version = u16::from_be_bytes([b[4], b[5]]);
        let crc = u32::from_be_bytes([b[32], b[33], b[34], b[35]]);
        if magic != CHECKPOINT_MAGIC || version != FORMAT_VERSION {
            return Err("bad magic or version".into());
        }
        if crc != crc32c::crc32c(&b[0..32]) {
            return Err("CRC mismatch".into());
        }
        Ok(Checkpoint { clean: b[6] == 1, recovery_point: i64_at(8), log_start_offset: i64_at(16), log_end_offset: i64_at(24) })
    }

    /// Reads the checkpoint; `Ok(None)` if there is none, `Err` with a reason if it is damaged.
    pub fn read(dir: &Path) -> io::Result<Result<Option<Checkpoint>, String>> {
        match std::fs::read(dir.join(CHECKPOINT_FILE)) {
            Ok(b) => Ok(Checkpoint::decode(&b).map(Some)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ok(None)),
            Err(e) => Err(e),
        }
    }

    /// Writes the checkpoint atomically and durably.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        write_atomically(&dir.join(CHECKPOINT_FILE), &self.encode())?;
        sync_dir(dir)
    }
}
