//! Retention decisions, as pure functions over segment summaries: which local segments may be
//! deleted (only uploaded ones, past `local.retention.*`), and how many remote segments expired
//! (past `retention.*`, counted over the whole log, local and remote).

use super::manifest::Manifest;
use super::TierSettings;

/// What retention needs to know about a closed local segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalSegment {
    pub next_offset: i64,
    pub size_bytes: u64,
    pub max_timestamp: i64,
}

/// The offset below which local segments may be deleted (the `next_offset` of the last one), if
/// any: oldest first, only segments that end at or below `uploaded_end`, while the newest record
/// is older than `local.retention.ms` or the local log (`local_bytes`, active segment included)
/// stays at least `local.retention.bytes` without it.
pub(crate) fn local_delete_below(
    closed: &[LocalSegment],
    uploaded_end: i64,
    local_bytes: u64,
    s: &TierSettings,
    now_ms: i64,
) -> Option<(i64, usize)> {
    let mut total = local_bytes;
    let mut cut = None;
    for (n, seg) in closed.iter().enumerate() {
        if seg.next_offset > uploaded_end {
            break;
        }
        let by_time = s.local_retention_ms.is_some_and(|ms| seg.max_timestamp < now_ms.saturating_sub(ms as i64));
        let by_size = s.local_retention_bytes.is_some_and(|limit| total.saturating_sub(seg.size_bytes) >= limit);
        if !by_time && !by_size {
            break;
        }
        total = total.saturating_sub(seg.size_bytes);
        cut = Some((seg.next_offset, n + 1));
    }
    cut
}

/// How many of the oldest remote segments expired: past `retention.ms`, while the whole log
/// (remote bytes plus `local_only_bytes` not in the store) stays at least `retention.bytes`
/// without them, or wholly below the manifest's log start offset (DeleteRecords).
pub(crate) fn remote_expired(manifest: &Manifest, local_only_bytes: u64, s: &TierSettings, now_ms: i64) -> usize {
    let mut total = manifest.size_bytes() + local_only_bytes;
    let mut n = 0;
    for seg in &manifest.segments {
        let below_start = seg.next_offset <= manifest.log_start_offset;
        let by_time = s.retention_ms.is_some_and(|ms| seg.max_timestamp < now_ms.saturating_sub(ms as i64));
        let by_size = s.retention_bytes.is_some_and(|limit| total.saturating_sub(seg.size_bytes) >= limit);
        if !below_start && !by_time && !by_size {
            break;
        }
        total = total.saturating_sub(seg.size_bytes);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::manifest::RemoteSegment;
    use super::*;

    fn settings() -> TierSettings {
        TierSettings { enabled: true, local_retention_ms: None, local_retention_bytes: None, retention_ms: None, retention_bytes: None }
    }

    fn local(next: i64, ts: i64) -> LocalSegment {
        LocalSegment { next_offset: next, size_bytes: 100, max_timestamp: ts }
    }

    #[test]
    fn local_deletion_never_passes_the_uploaded_end() {
        let closed = [local(10, 0), local(20, 0), local(30, 0)];
        let s = TierSettings { local_retention_bytes: Some(0), ..settings() };
        assert_eq!(local_delete_below(&closed, 20, 400, &s, 1000), Some((20, 2)));
        assert_eq!(local_delete_below(&closed, 5, 400, &s, 1000), None);
        let keep_250 = TierSettings { local_retention_bytes: Some(250), ..settings() };
        assert_eq!(local_delete_below(&closed, 30, 400, &keep_250, 1000), Some((10, 1)));
        let by_time = TierSettings { local_retention_ms: Some(100), ..settings() };
        let closed = [local(10, 0), local(20, 950)];
        assert_eq!(local_delete_below(&closed, 30, 300, &by_time, 1000), Some((10, 1)));
        assert_eq!(local_delete_below(&closed, 30, 300, &settings(), 1000), None);
    }

    #[test]
    fn remote_expiry_counts_time_size_and_the_log_start() {
        let seg = |base: i64, next: i64, ts: i64| RemoteSegment {
            base_offset: base,
            next_offset: next,
            size_bytes: 100,
            max_timestamp: ts,
            offset_of_max_timestamp: next - 1,
            first_leader_epoch: 0,
            last_leader_epoch: 0,
            log_key: String::new(),
            index_key: String::new(),
            time_index_key: String::new(),
        };
        let mut m = Manifest::empty("t", uuid::Uuid::nil(), 0);
        m.segments = vec![seg(0, 10, 0), seg(10, 20, 500), seg(20, 30, 900)];
        assert_eq!(remote_expired(&m, 0, &settings(), 1000), 0);
        assert_eq!(remote_expired(&m, 0, &TierSettings { retention_ms: Some(200), ..settings() }, 1000), 2);
        assert_eq!(remote_expired(&m, 100, &TierSettings { retention_bytes: Some(200), ..settings() }, 1000), 2);
        m.log_start_offset = 15;
        assert_eq!(remote_expired(&m, 0, &settings(), 1000), 1);
    }
}
