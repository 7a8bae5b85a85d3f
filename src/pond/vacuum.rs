//! Vacuum: deleting the files no read needs any more.
//!
//! Two kinds go: the files of versions a compaction superseded longer ago
//! than the retention (first a `vacuum` row per version is committed, so
//! that a read as of an earlier version reports them gone instead of failing
//! to open them; a crash after the commit leaves garbage, never a
//! referenced file that is missing), and garbage: files under `data/` that
//! no oplog row references, left by writes that failed or were killed. The
//! oplog's own files go too: Delta commits and checkpoints behind a newer
//! checkpoint, and oplog data files that merges replaced, once older than
//! the retention (and an hour).

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::Pond;
use super::append::backoff;
use crate::check::DEFAULT_GRACE;
use crate::error::{Error, Result};
use crate::index::OplogIndex;
use crate::oplog::{CommitOutcome, EntryType, OplogEntry};
use crate::time::{before_now, now_micros};

/// Settings of a vacuum.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VacuumOptions {
    /// How long superseded versions stay readable as of earlier versions,
    /// and how old other unneeded files must be before they go.
    pub retain: Duration,
    /// How old an unreferenced file (or an old oplog file) must be at
    /// least, whatever `retain` says: a write in progress has such a file
    /// for a while. Lower it only when no write can be running.
    pub grace: Duration,
}

impl VacuumOptions {
    /// Keep what is younger than `retain`, and anything unreferenced younger
    /// than [`DEFAULT_GRACE`].
    pub fn new(retain: Duration) -> Self {
        Self {
            retain,
            grace: DEFAULT_GRACE,
        }
    }

    /// Sets [`Self::grace`].
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// What [`Pond::vacuum`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VacuumOutcome {
    /// Files of superseded versions deleted.
    pub superseded_files: usize,
    /// Their bytes.
    pub superseded_bytes: i64,
    /// Unreferenced files deleted.
    pub garbage_files: usize,
    /// Delta log files (old commits and checkpoints) deleted.
    pub log_files: usize,
    /// The oplog's own data files deleted (those its merges replaced).
    pub oplog_files: usize,
    /// The oplog version that recorded the superseded deletions, if any.
    pub txn_seq: Option<i64>,
}

impl Pond {
    /// Deletes the files of versions superseded by a compaction more than
    /// `retain` ago, and unreferenced files under `data/` older than
    /// `retain` (and in any case older than [`DEFAULT_GRACE`], so that the
    /// file of an append or compaction still in progress is never taken for
    /// garbage: writers commit a file only while it is younger than
    /// [`PondOptions::commit_within`](super::PondOptions::commit_within),
    /// half of that). Reads of the series as it is are not affected; reads
    /// as of a version before such a compaction fail afterwards.
    pub async fn vacuum(&self, retain: Duration) -> Result<VacuumOutcome> {
        self.vacuum_with_options(&VacuumOptions::new(retain)).await
    }

    /// [`Pond::vacuum`] with [`VacuumOptions`].
    pub async fn vacuum_with_options(&self, options: &VacuumOptions) -> Result<VacuumOutcome> {
        let retain = options.retain;
        // The cutoff is taken before the oplog is read: a writer commits a
        // file only while it is younger than `commit_within`, less than the
        // grace, so a file old enough to go was either committed before the
        // read below (and is referenced) or never will be.
        let cutoff = before_now(retain.max(options.grace));
        // List before refreshing: a file committed in between is then
        // referenced, never mistaken for garbage.
        let listed: Vec<ObjectMeta> = self
            .store
            .list(Some(&Path::from("data")))
            .try_collect()
            .await?;
        let (mut outcome, superseded) = self.vacuum_superseded(retain).await?;
        let referenced = self.referenced_files();
        for meta in listed {
            let path = meta.location.as_ref();
            // The superseded files just deleted are no longer referenced,
            // but they were never garbage.
            if !referenced.contains(path)
                && !superseded.contains(path)
                && meta.last_modified <= cutoff
                && super::is_data_file(path)
            {
                match self.store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        outcome.garbage_files += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // The oplog's own files, kept at least the grace period (an hour): a
        // handle that probes for new commits lists the log every ten
        // minutes, so it never misses a commit that cleanup took.
        let cutoff_ms = cutoff.timestamp_millis();
        let mut oplog = self.oplog.lock().await;
        let index = self.refresh_locked(&mut oplog).await?;
        let cleaned = oplog.vacuum(index.delta_version(), cutoff_ms).await?;
        outcome.log_files = cleaned.log_files;
        outcome.oplog_files = cleaned.data_files;
        Ok(outcome)
    }

    /// Commits `vacuum` rows for the versions superseded before the
    /// retention, then deletes their files; returns their paths too.
    async fn vacuum_superseded(
        &self,
        retain: Duration,
    ) -> Result<(VacuumOutcome, HashSet<String>)> {
        let cutoff =
            now_micros().saturating_sub(i64::try_from(retain.as_micros()).unwrap_or(i64::MAX));
        let attempts = self.options.commit_attempts.max(1);
        for attempt in 0..attempts {
            let mut oplog = self.oplog.lock().await;
            let index = self.refresh_locked(&mut oplog).await?;
            let txn_seq = index.delta_version() + 1;
            let entries = vacuum_entries(&index, cutoff, txn_seq);
            if entries.is_empty() {
                return Ok((VacuumOutcome::default(), HashSet::new()));
            }
            let CommitOutcome::Committed(delta_version) =
                oplog.commit(index.delta_version(), &entries).await?
            else {
                drop(oplog);
                backoff(attempt).await;
                continue;
            };
            let mut next = (*index).clone();
            match next.apply(entries.clone(), delta_version) {
                Ok(()) => {
                    self.install(next);
                }
                Err(e) => tracing::warn!(error = %e, "could not index an own commit"),
            }
            drop(oplog);
            let mut outcome = VacuumOutcome {
                txn_seq: Some(delta_version),
                ..VacuumOutcome::default()
            };
            let mut deleted = HashSet::new();
            for entry in &entries {
                let file = entry.file_path.clone().unwrap_or_default();
                match self.store.delete(&Path::from(file.as_str())).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                outcome.superseded_files += 1;
                outcome.superseded_bytes += entry.size.unwrap_or(0);
                deleted.insert(file);
            }
            return Ok((outcome, deleted));
        }
        Err(Error::CommitConflict {
            path: "the oplog (vacuum)".to_string(),
            attempts,
        })
    }
}

/// A `vacuum` row for every version superseded at or before `cutoff` whose
/// file is still there.
fn vacuum_entries(index: &OplogIndex, cutoff: i64, txn_seq: i64) -> Vec<OplogEntry> {
    let created_at = now_micros();
    index
        .all_series()
        .flat_map(|s| {
            s.versions
                .iter()
                .filter(|v| {
                    v.vacuumed_at.is_none() && v.superseded_time.is_some_and(|t| t <= cutoff)
                })
                .map(move |v| OplogEntry {
                    series: s.path.clone(),
                    series_id: s.id.clone(),
                    version: v.version,
                    entry_type: EntryType::Vacuum,
                    file_path: Some(v.file_path.clone()),
                    size: Some(v.size),
                    row_count: None,
                    min_event_time: None,
                    max_event_time: None,
                    timestamp_column: s.timestamp_column.clone(),
                    schema: None,
                    content_hash: None,
                    txn_seq,
                    created_at,
                    extended_attributes: None,
                })
        })
        .collect()
}
