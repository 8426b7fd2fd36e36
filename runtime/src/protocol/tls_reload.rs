//! When the TLS certificates are re-read: on SIGHUP, and when one of their files changes.
//!
//! Why both: an operator rotating certificates by hand can send SIGHUP, but cert-manager or a
//! Kubernetes secret mount replaces the files (a symlink swap) and signals no one, so the broker
//! watches the files itself. The watch is a `stat` of at most three files every
//! [`FILE_CHECK_INTERVAL`], on a blocking thread; a change of modification time, size or inode
//! triggers a reload. A reload that fails (a file caught half-written, a key that does not match
//! the certificate) keeps the certificates in force and says why; the next change tries again.
//! [`TlsAcceptorSource::reload`] swaps the configuration only for new handshakes, so nothing
//! connected is dropped either way.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::tls::TlsAcceptorSource;

/// How often the certificate files are checked for a change.
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Starts both triggers for `tls`; they live as long as the runtime.
pub fn spawn(tls: Arc<TlsAcceptorSource>) {
    on_sighup(Arc::clone(&tls));
    on_file_change(tls);
}

fn reload(tls: &TlsAcceptorSource, why: &str) {
    match tls.reload() {
        Ok(()) => tracing::info!("{why}: TLS certificates reloaded"),
        Err(e) => tracing::error!("{why}: keeping the previous TLS certificates: {e}"),
    }
}

fn on_sighup(tls: Arc<TlsAcceptorSource>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); TLS certificates reload only when their files change");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let tls = Arc::clone(&tls);
            // Reading PEM files is file I/O: not on an async thread.
            if let Err(e) = tokio::task::spawn_blocking(move || reload(&tls, "SIGHUP")).await {
                tracing::error!("SIGHUP: the TLS reload task failed: {e}");
            }
        }
    });
}

fn on_file_change(tls: Arc<TlsAcceptorSource>) {
    let files = tls.files();
    tokio::spawn(async move {
        let mut last = stamps(&files);
        let mut ticks = tokio::time::interval(FILE_CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (tls, files, before) = (Arc::clone(&tls), files.clone(), last.clone());
            let checked = tokio::task::spawn_blocking(move || {
                let now = stamps(&files);
                if now != before {
                    reload(&tls, "certificate files changed");
                }
                now
            });
            match checked.await {
                Ok(now) => last = now,
                Err(e) => tracing::error!("the TLS certificate file check failed: {e}"),
            }
        }
    });
}

/// What a change of a file's content changes: rewritten in place (time, size) or replaced
/// (inode). `None`: the file cannot be read now (mid-swap, or deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<FileStamp>> {
    files
        .iter()
        .map(|path| std::fs::metadata(path).ok().map(|m| FileStamp { modified: m.modified().ok(), len: m.len(), inode: m.ino() }))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_or_a_replacement_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.crt");
        std::fs::write(&path, "one").unwrap();
        let files = vec![path.clone(), dir.path().join("missing.key")];
        let first = stamps(&files);
        assert!(first[0].is_some() && first[1].is_none());
        assert_eq!(stamps(&files), first, "nothing changed");

        std::fs::write(&path, "longer").unwrap();
        let rewritten = stamps(&files);
        assert_ne!(rewritten, first);

        // Same size, replaced by a rename (how secret mounts and careful tools update files).
        let next = dir.path().join("next.crt");
        std::fs::write(&next, "LONGER").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_ne!(stamps(&files), rewritten);
    }
}
