//! Opening a partition's log: closed segments up to the newest valid seal load from their
//! seals, the rest are scanned (producer state rebuilt, a torn tail of the last segment cut),
//! and the Raft indexes must run on without a gap.

use super::segment::{ScanReport, Segment};
use super::tail_cache::TailCache;
use super::{seal, LogConfig, LogError, LogResult, PartitionLog, RecoveryReport};
use crate::storage::producer_state::ProducerStates;
use parking_lot::RwLock;
use std::path::{Path, PathBuf};

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, verifying the last segment and cutting a torn tail.
    pub fn open(dir: &Path, cfg: LogConfig) -> LogResult<(PartitionLog, RecoveryReport)> {
        std::fs::create_dir_all(dir)?;
        let bases = segment_bases(dir)?;
        let mut report = RecoveryReport {
            segments: bases.len(),
            ..Default::default()
        };
        let mut segments = recover_segments(dir, cfg, &bases, &mut report)?;
        if report.truncated.is_some() {
            metrics::counter!(crate::observability::RECOVERY_TAIL_CUTS).increment(1);
        }
        // An empty trailing segment (left by a roll or a truncation) is harmless; an empty
        // directory gets its first segment.
        if segments.is_empty() {
            segments.push(Segment::create(dir, 0, 0, cfg.index_interval_bytes)?);
        }
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            cfg,
            segment_bytes: std::sync::atomic::AtomicU64::new(cfg.segment_bytes),
            segment_ms: std::sync::atomic::AtomicI64::new(cfg.segment_ms),
            inner: RwLock::new(segments),
            log_start: std::sync::atomic::AtomicI64::new(super::retention::read_log_start(dir)?),
            producers: parking_lot::Mutex::new((report.producers.clone(), true)),
            tail: parking_lot::Mutex::new(TailCache::new(cfg.tail_cache_bytes, cfg.tail_burst_bytes())),
            synced_upto: Default::default(),
            sync_failed: Default::default(),
            cuts: Default::default(),
        };
        // What recovery found on disk counts as durable.
        log.synced_upto.store(
            log.last_log_id().map_or(0, |l| l.index + 1),
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok((log, report))
    }
}

/// The base offsets of the segment files in `dir`, in order.
fn segment_bases(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse::<i64>().ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// Opens every segment, checking that each continues the Raft index of the one before it.
fn recover_segments(dir: &Path, cfg: LogConfig, bases: &[i64], report: &mut RecoveryReport) -> LogResult<Vec<Segment>> {
    let mut segments: Vec<Segment> = Vec::new();
    // The first segment continues after what retention (or a snapshot install) purged.
    let mut next_index = super::retention::read_purge_record(dir)
        .map(|r| r.purged.index + 1)
        .unwrap_or(0);
    let paths: Vec<PathBuf> = bases.iter().map(|b| dir.join(super::segment::file_name(*b))).collect();
    // Each seal is read once; the active (last) segment never has a valid one.
    let mut seals: Vec<Option<seal::SegmentSeal>> = paths
        .iter()
        .take(paths.len().saturating_sub(1))
        .map(|p| seal::read_valid(p))
        .collect();
    let sealed_upto = seals.iter().rposition(Option::is_some);
    if let Some(s) = sealed_upto.and_then(|i| seals[i].as_ref()) {
        report.producers = s.producers.clone();
    }
    for (i, base) in bases.iter().enumerate() {
        let path = &paths[i];
        let before_newest_seal = sealed_upto.is_some_and(|upto| i <= upto);
        let sealed = if before_newest_seal { seals[i].take() } else { None };
        let seg = match sealed {
            Some(s) => {
                report.entries += s.entries;
                seal::open_sealed(path, &s, cfg.index_interval_bytes)?
            }
            None => {
                let is_last = i + 1 == bases.len();
                scan_segment(path, *base, next_index, is_last, before_newest_seal, cfg, report)?
            }
        };
        if let Some(prev) = segments.last() {
            if seg.last.is_some() && prev.last_index().map(|l| l + 1) != Some(seg.base_index) {
                return Err(LogError::IndexGap(path.clone()));
            }
        }
        next_index = seg.last_index().map(|l| l + 1).unwrap_or(seg.base_index);
        segments.push(seg);
    }
    Ok(segments)
}

/// Scans a segment without a usable seal, verifying every entry; the last one's torn tail is
/// cut. Before the newest seal, producer state comes from that seal instead.
fn scan_segment(
    path: &Path,
    base: i64,
    next_index: u64,
    is_last: bool,
    before_newest_seal: bool,
    cfg: LogConfig,
    report: &mut RecoveryReport,
) -> LogResult<Segment> {
    if is_last {
        // The active segment changes after its seal (if any) was written.
        seal::remove(path)?;
    }
    let mut scratch = ProducerStates::default();
    let producers = if before_newest_seal {
        &mut scratch
    } else {
        &mut report.producers
    };
    let (seg, ScanReport { entries, truncated }) =
        Segment::open(path, base, next_index, is_last, cfg.index_interval_bytes, producers)?;
    report.entries += entries;
    report.truncated = truncated;
    Ok(seg)
}
