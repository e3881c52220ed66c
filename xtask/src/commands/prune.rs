//! `cargo xtask prune`: all but the newest N snapshots of the canister deleted, or (with
//! `--dir`) all but the newest N backups in a directory, which needs no backend.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::{CanisterRef, SnapshotId, SnapshotInfo};
use crate::backup::manifest::Manifest;
use crate::lifecycle::{Out, Session};
use crate::records::SnapshotSet;

#[derive(Args)]
pub struct Prune {
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    keep: u16,
    /// Prune the backups in this directory instead of the canister's snapshots.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Prune the sets taken (`snapshot` of several canisters): keep the newest N, and
    /// delete every member snapshot of the older ones.
    #[arg(long, conflicts_with = "dir")]
    sets: bool,
    /// Only list what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

/// What was (or, with `--dry-run`, would be) deleted and kept.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Pruned {
    Snapshots {
        dry_run: bool,
        deleted: Vec<SnapshotId>,
        kept: Vec<SnapshotId>,
    },
    Backups(PrunedBackups),
    Sets {
        dry_run: bool,
        deleted: Vec<String>,
        kept: Vec<String>,
    },
}

/// The backups of a directory deleted and kept.
#[derive(Serialize)]
pub struct PrunedBackups {
    pub dry_run: bool,
    pub deleted: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
    /// What the directory holds that is not an intact backup.
    pub left_alone: Vec<PathBuf>,
}

impl Run for Prune {
    type Output = Pruned;

    fn run(self, cx: &mut Context) -> Result<Pruned> {
        let keep = self.keep.into();
        match &self.dir {
            Some(dir) => prune_dir(cx.out, dir, keep, self.dry_run).map(Pruned::Backups),
            None if self.sets => prune_sets(cx.set_session()?, keep, self.dry_run),
            None => prune(cx.session()?, keep, self.dry_run),
        }
    }
}

/// Deletes every member snapshot of all but the newest `keep` sets.
fn prune_sets(session: &mut Session, keep: usize, dry_run: bool) -> Result<Pruned> {
    let mut sets: Vec<(String, SnapshotSet)> = session.records.sets.clone().into_iter().collect();
    sets.sort_by_key(|(id, set)| (set.taken_at_ns, id.clone()));
    let doomed = sets.len().saturating_sub(keep);
    let verb = if dry_run { "would delete" } else { "deleting" };
    for (id, set) in &sets[..doomed] {
        session.say(format!("  {verb} set {id} (taken at {})", set.taken_at));
        if dry_run {
            continue;
        }
        for member in &set.members {
            let canister: CanisterRef = member.canister.parse()?;
            let deleted = session
                .backend
                .snapshot_delete(&canister, &member.snapshot_id.parse()?);
            session.show();
            deleted
                .with_context(|| format!("deleting {}'s snapshot of set {id}", member.canister))?;
            session.records.forget(&member.snapshot_id);
            session.save()?;
        }
    }
    for (id, set) in &sets[doomed..] {
        session.say(format!("  keeping set {id} (taken at {})", set.taken_at));
    }
    let ids = |s: &[(String, SnapshotSet)]| s.iter().map(|(id, _)| id.clone()).collect();
    Ok(Pruned::Sets {
        dry_run,
        deleted: ids(&sets[..doomed]),
        kept: ids(&sets[doomed..]),
    })
}

/// Deletes all but the newest `keep` snapshots of the canister.
fn prune(session: &mut Session, keep: usize, dry_run: bool) -> Result<Pruned> {
    let listed = session.backend.snapshot_list(&session.canister);
    session.show();
    let mut listed = listed?;
    listed.sort_by(|a, b| a.taken_at.cmp(&b.taken_at));
    let doomed = listed.len().saturating_sub(keep);
    let verb = if dry_run { "would delete" } else { "deleting" };
    for s in &listed[..doomed] {
        session.say(format!(
            "  {verb} {} ({}, taken at {})",
            s.id, s.size, s.taken_at
        ));
        if !dry_run {
            let deleted = session.backend.snapshot_delete(&session.canister, &s.id);
            session.show();
            deleted?;
            session.records.forget(&s.id.to_string());
            session.save()?;
        }
    }
    for s in &listed[doomed..] {
        session.say(format!("  keeping {} (taken at {})", s.id, s.taken_at));
    }
    let ids = |s: &[SnapshotInfo]| s.iter().map(|s| s.id.clone()).collect();
    Ok(Pruned::Snapshots {
        dry_run,
        deleted: ids(&listed[..doomed]),
        kept: ids(&listed[doomed..]),
    })
}

/// `prune --dir D --keep N`: deletes all but the newest N backups in D (by when their
/// snapshots were taken); anything that is not an intact-manifest backup is left alone.
pub fn prune_dir(out: Out, dir: &Path, keep: usize, dry_run: bool) -> Result<PrunedBackups> {
    let mut backups: Vec<(Manifest, PathBuf)> = Vec::new();
    let mut left_alone = Vec::new();
    let listing = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read {}: name the directory holding your backups",
            dir.display()
        )
    })?;
    for entry in listing {
        let path = entry?.path();
        match path.is_dir().then(|| Manifest::read(&path)) {
            Some(Ok(Some(manifest))) => backups.push((manifest, path)),
            _ => left_alone.push(path),
        }
    }
    backups.sort_by(|(a, pa), (b, pb)| (a.origin.taken_at, pa).cmp(&(b.origin.taken_at, pb)));
    let doomed = backups.len().saturating_sub(keep);
    let verb = if dry_run { "would delete" } else { "deleting" };
    for (manifest, path) in &backups[..doomed] {
        out.say(format!(
            "  {verb} {} (snapshot {}, taken at {})",
            path.display(),
            manifest.origin.snapshot_id,
            manifest.origin.taken_at_utc
        ));
        if !dry_run {
            std::fs::remove_dir_all(path)
                .with_context(|| format!("cannot delete {}", path.display()))?;
        }
    }
    for (manifest, path) in &backups[doomed..] {
        out.say(format!(
            "  keeping {} (taken at {})",
            path.display(),
            manifest.origin.taken_at_utc
        ));
    }
    for path in &left_alone {
        out.say(format!("  leaving {} alone: not a backup", path.display()));
    }
    let paths = |b: &[(Manifest, PathBuf)]| b.iter().map(|(_, p)| p.clone()).collect();
    Ok(PrunedBackups {
        dry_run,
        deleted: paths(&backups[..doomed]),
        kept: paths(&backups[doomed..]),
        left_alone,
    })
}
