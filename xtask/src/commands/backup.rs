//! `cargo xtask backup`: a backup that is proven restorable, once (for cron) or every
//! `--every`: snapshot → download → verify-backup → restore drill → prune, one log line per
//! run. The drill loads the downloaded snapshot into a scratch canister on a temporary
//! embedded replica and asks it the check query, which must answer as the canister did when
//! the snapshot was taken: a backup nobody has restored is a hope, not a backup. A failed run
//! keeps every earlier backup, leaves the canister running, and is tried again at the next
//! tick; an unfinished download is resumed by the next run; Ctrl-C or SIGTERM ends the loop
//! between steps (while the canister is stopped, after it runs again).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use serde::Serialize;

use super::download::{BackupSummary, fetch_into};
use super::prune::prune_dir;
use super::snapshot::{Snapshot, take};
use super::{Context, Run};
use crate::backend::{SnapshotId, utc};
use crate::backup::{self, Downloading, downloading_marker};
use crate::lifecycle::{Scratch, Session, unix_now};
use crate::project;
use crate::query::Check;

#[derive(Args)]
pub struct Backup {
    /// Where the backups go, one directory per run.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Run again after this long (`30m`, `6h`, `1d`), until Ctrl-C or SIGTERM; once without.
    #[arg(long, value_name = "INTERVAL", value_parser = interval)]
    every: Option<Duration>,
    /// How many backups to keep in DIR.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..))]
    keep: u16,
    /// The query the drill asks, as 'METHOD ARGS' [default for the chat: 'dump ()'].
    #[arg(long, value_name = "'METHOD ARGS'")]
    check: Option<Check>,
}

/// What one run did.
#[derive(Serialize)]
pub struct BackedUp {
    pub backup: BackupSummary,
    /// What the drill asked of the restored copy; none when there was no check query (the
    /// copy was only loaded and run).
    pub drill: Option<String>,
    pub kept: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
}

impl Run for Backup {
    type Output = Option<BackedUp>;

    fn run(self, cx: &mut Context) -> Result<Option<BackedUp>> {
        let Some(every) = self.every else {
            return self.once(cx).map(Some);
        };
        loop {
            let started = Instant::now();
            // A failed run is logged and tried again at the next tick.
            let _ = self.once(cx);
            let next = every.saturating_sub(started.elapsed());
            eprintln!("{} next backup in {}", now_utc(), humantime(next));
            std::thread::sleep(next);
        }
    }
}

impl Backup {
    /// One run, logged as one line on stdout (its steps go to stderr).
    fn once(&self, cx: &mut Context) -> Result<BackedUp> {
        let json = cx.out.json;
        cx.out.json = true;
        let result = self.steps(cx);
        cx.out.json = json;
        let canister = cx.canister().clone();
        let line = match &result {
            Ok(done) => format!(
                "{} backup of {canister} ok: snapshot {} → {} ({}); drill: {}; {} kept",
                now_utc(),
                done.backup.snapshot_id,
                done.backup.dir.display(),
                indicatif::HumanBytes(done.backup.bytes),
                done.drill.as_deref().unwrap_or("loaded and ran"),
                done.kept.len()
            ),
            Err(error) => format!(
                "{} backup of {canister} FAILED: {error:#}; the earlier backups are kept",
                now_utc()
            ),
        };
        if !json {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
        result
    }

    fn steps(&self, cx: &mut Context) -> Result<BackedUp> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let session = cx.session()?;
        let key = std::path::absolute(&self.dir)?.display().to_string();
        let listed = session.backend.snapshot_list(&session.canister);
        session.show();
        let listed: Vec<SnapshotId> = listed?.into_iter().map(|s| s.id).collect();
        let (id, target) = match unfinished(&self.dir, &listed)? {
            Some((id, target)) => (id, target),
            None => {
                let mut options = Snapshot::plain();
                options.check = self.check.clone();
                options.replace = session
                    .records
                    .backups
                    .get(&key)
                    .and_then(|id| id.parse().ok())
                    .filter(|id| listed.contains(id));
                let id = take(session, options)
                    .context("at the snapshot")?
                    .snapshot_id;
                session.records.backups.insert(key, id.to_string());
                session.save()?;
                let target = self.dir.join(backup_name(&session.canister, &id));
                (id, target)
            }
        };
        let summary = fetch_into(session, Some(&id), &target).context("at the download")?;
        backup::check(&target, false).context("at verify-backup")?;
        let drill = drill(session, &id, &target).context("at the restore drill")?;
        let pruned = prune_dir(cx.out, &self.dir, self.keep.into(), false).context("at prune")?;
        Ok(BackedUp {
            backup: summary,
            drill,
            kept: pruned.kept,
            deleted: pruned.deleted,
        })
    }
}

/// Loads the backup in `dir` into a scratch canister and asks it the check recorded when
/// snapshot `id` was taken; it must answer the same.
fn drill(session: &mut Session, id: &SnapshotId, dir: &Path) -> Result<Option<String>> {
    let recorded = session.records.taken.get(&id.to_string()).cloned();
    let mut scratch = Scratch::new()?;
    let Some((check, answer)) = recorded.and_then(|r| r.check) else {
        scratch.load(dir)?;
        return Ok(None);
    };
    let now = scratch.ask(dir, &check)?;
    if project::hex(&now) != answer {
        bail!(
            "the restored copy answers `{check}` differently from the canister when the snapshot was taken; {} is not a faithful backup",
            dir.display()
        );
    }
    Ok(Some(format!("`{check}` answered as at the snapshot")))
}

/// A download in `dir` that an earlier run left unfinished, of a snapshot the canister
/// still holds (`listed`): its snapshot and directory. One whose snapshot is gone cannot be
/// finished, and is removed.
fn unfinished(dir: &Path, listed: &[SnapshotId]) -> Result<Option<(SnapshotId, PathBuf)>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let marker = downloading_marker(&path)?;
        if !path.is_dir() || !marker.is_file() {
            continue;
        }
        let unfinished: Option<Downloading> = serde_json::from_slice(&std::fs::read(&marker)?).ok();
        match unfinished.and_then(|u| u.snapshot_id.parse::<SnapshotId>().ok()) {
            Some(id) if listed.contains(&id) => return Ok(Some((id, path))),
            _ => {
                std::fs::remove_dir_all(&path)?;
                std::fs::remove_file(&marker)?;
            }
        }
    }
    Ok(None)
}

/// `30s`, `15m`, `6h`, `1d`.
fn interval(text: &str) -> Result<Duration> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && scale > 0 => Ok(Duration::from_secs(n * scale)),
        _ => Err(anyhow!(
            "`{text}` is not an interval: write a number and s, m, h or d, like 30m or 6h"
        )),
    }
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3_600 => format!("{}h{:02}m", s / 3_600, s / 60 % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn now_utc() -> String {
    utc(unix_now())
}

/// `notes-20261202-150405-3`: the canister, when, and the snapshot's number on it (runs in
/// the same second take different snapshots).
fn backup_name(canister: &crate::backend::CanisterRef, id: &SnapshotId) -> String {
    let stamp = utc(unix_now())
        .trim_end_matches(" UTC")
        .replace(['-', ':'], "")
        .replace(' ', "-");
    let number =
        id.0.get(..8)
            .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8")));
    format!("{canister}-{stamp}-{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_a_number_and_a_unit() {
        assert_eq!(interval("6h").unwrap(), Duration::from_secs(21_600));
        assert_eq!(interval("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(interval("1d").unwrap(), Duration::from_secs(86_400));
        for bad in ["", "h", "0h", "6", "6w", "-1h"] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }
}
