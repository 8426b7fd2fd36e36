//! Small durable-file helpers for broker-owned files (producer snapshots).

use std::io::Write;
use std::path::Path;

use super::BrokerError;

/// Writes `bytes` to `path` so that a crash leaves either the old or the new contents: write a
/// temporary file, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BrokerError> {
    let tmp = path.with_extension("tmp");
    fn io(op: &'static str, p: &Path) -> impl FnOnce(std::io::Error) -> BrokerError {
        let path = p.to_path_buf();
        move |source| BrokerError::Io { op, path, source }
    }
    let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(bytes).map_err(io("write", &tmp))?;
    file.sync_data().map_err(io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("fsync directory", dir))?;
    }
    Ok(())
}

/// Removes a directory tree the safe way: rename it to `<name>.deleted` (atomic, so a crash never
/// leaves a half-deleted partition under its live name), then delete it. A leftover `*.deleted`
/// directory is removed at the next start by [`remove_leftover_deleted`].
pub fn remove_dir_via_rename(dir: &Path) -> Result<(), BrokerError> {
    if !dir.exists() {
        return Ok(());
    }
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".{}.deleted", uuid::Uuid::new_v4().simple()));
    let doomed = dir.with_file_name(name);
    std::fs::rename(dir, &doomed).map_err(|source| BrokerError::Io { op: "rename", path: dir.to_path_buf(), source })?;
    if let Some(parent) = dir.parent() {
        if let Err(e) = std::fs::File::open(parent).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %parent.display(), "cannot fsync directory after rename: {e}");
        }
    }
    std::fs::remove_dir_all(&doomed).map_err(|source| BrokerError::Io { op: "remove", path: doomed.clone(), source })
}

/// Deletes `*.deleted` directories left in `data_dir` by a crash during topic deletion.
pub fn remove_leftover_deleted(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && entry.file_name().to_string_lossy().ends_with(".deleted") {
            tracing::info!(dir = %path.display(), "removing a partition left over from an interrupted topic deletion");
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(dir = %path.display(), "cannot remove: {e}");
            }
        }
    }
}
