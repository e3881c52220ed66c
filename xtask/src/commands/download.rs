//! `cargo xtask download`: a snapshot into a directory in the dfx/icp layout, sealed by a
//! manifest; run again, it resumes an interrupted download of the same snapshot.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::backup::{
    Downloading, downloading_marker,
    layout::{Layout, write_atomically},
    manifest::{Manifest, is_bookkeeping},
    set_dir::{SetManifest, SetMemberDir},
};
use crate::lifecycle::Session;

#[derive(Args)]
pub struct Download {
    #[arg(conflicts_with = "set")]
    id: Option<SnapshotId>,
    /// Download every member of this set, each into DIR/<canister>, with DIR/set.json.
    #[arg(long, value_name = "SET")]
    set: Option<String>,
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Downloaded {
    One(BackupSummary),
    Set {
        set_id: String,
        dir: PathBuf,
        members: Vec<BackupSummary>,
    },
}

/// A backup on disk, as its manifest describes it.
#[derive(Serialize)]
pub struct BackupSummary {
    pub dir: PathBuf,
    pub canister_id: String,
    pub snapshot_id: String,
    pub taken_at: String,
    pub module_hash: Option<String>,
    pub files: usize,
    pub bytes: u64,
}

impl BackupSummary {
    pub fn of(dir: &Path, manifest: &Manifest) -> Self {
        Self {
            dir: dir.to_owned(),
            canister_id: manifest.origin.canister_id.clone(),
            snapshot_id: manifest.origin.snapshot_id.clone(),
            taken_at: manifest.origin.taken_at_utc.clone(),
            module_hash: manifest.module_hash.clone(),
            files: manifest.files.len(),
            bytes: manifest.bytes(),
        }
    }
}

/// What a download directory already holds.
enum Prior {
    Nothing,
    /// An unfinished download of the same snapshot, its metadata already there.
    Partial,
    /// A finished, intact download of the same snapshot.
    Done(Box<Manifest>),
}

impl Run for Download {
    type Output = Downloaded;

    fn run(self, cx: &mut Context) -> Result<Downloaded> {
        let Some(set_id) = self.set else {
            return fetch_into(cx.session()?, self.id.as_ref(), &self.output).map(Downloaded::One);
        };
        let session = cx.set_session()?;
        let Some(set) = session.records.sets.get(&set_id).cloned() else {
            bail!("no set {set_id}: `cargo xtask list` shows the sets taken");
        };
        let named = session.canister.clone();
        let mut members = Vec::new();
        let mut manifest = SetManifest {
            set_id: set_id.clone(),
            taken_at: set.taken_at.clone(),
            members: Vec::new(),
        };
        for member in &set.members {
            session.canister = member.canister.parse()?;
            let dir = self.output.join(&member.canister);
            let fetched = fetch_into(session, Some(&member.snapshot_id.parse()?), &dir);
            session.canister = named.clone();
            members.push(fetched.with_context(|| format!("downloading {}", member.canister))?);
            manifest.members.push(SetMemberDir {
                canister: member.canister.clone(),
                snapshot_id: member.snapshot_id.clone(),
                dir: member.canister.clone(),
            });
        }
        manifest.write(&self.output)?;
        cx.out.say(format!(
            "  set {set_id} in {}: {} backups",
            self.output.display(),
            members.len()
        ));
        Ok(Downloaded::Set {
            set_id,
            dir: self.output,
            members,
        })
    }
}

/// Downloads snapshot `id` (the newest when `None`) into `dir` and seals it with a manifest;
/// continues an interrupted download of the same snapshot there.
pub fn fetch_into(
    session: &mut Session,
    id: Option<&SnapshotId>,
    dir: &Path,
) -> Result<BackupSummary> {
    let (canister, info) = session.resolve(id)?;
    let id = info.id.clone();
    let resume = match prior(dir, &canister, &id)? {
        Prior::Done(manifest) => {
            session.say(format!(
                "  {} already holds snapshot {id}, intact; nothing to download",
                dir.display()
            ));
            return Ok(BackupSummary::of(dir, &manifest));
        }
        Prior::Partial => {
            session.say(format!("  resuming the download in {}", dir.display()));
            true
        }
        Prior::Nothing => false,
    };
    let marker = Downloading {
        canister_id: canister.clone(),
        snapshot_id: id.to_string(),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let marker_path = downloading_marker(dir)?;
    write_atomically(&marker_path, &serde_json::to_vec(&marker)?)?;
    let started = Instant::now();
    let downloaded = session
        .backend
        .snapshot_download(&session.canister, &id, dir, resume);
    session.show();
    downloaded.with_context(|| {
        format!(
            "the download stopped; run the same command again to resume it in {}",
            dir.display()
        )
    })?;
    let manifest = session.seal(dir, &canister, &id)?;
    std::fs::remove_file(marker_path)?;
    let seconds = started.elapsed().as_secs_f64();
    session.say(format!(
        "  downloaded snapshot {id} of {canister} to {}: {} files, {} in {seconds:.1} s ({}/s)",
        dir.display(),
        manifest.files.len(),
        indicatif::HumanBytes(manifest.bytes()),
        indicatif::HumanBytes((manifest.bytes() as f64 / seconds.max(1e-3)) as u64),
    ));
    Ok(BackupSummary::of(dir, &manifest))
}

/// What `dir` holds, and whether downloading snapshot `id` of `canister` there may go on.
fn prior(dir: &Path, canister: &str, id: &SnapshotId) -> Result<Prior> {
    if !dir.exists() {
        return Ok(Prior::Nothing);
    }
    if !dir.is_dir() {
        bail!("{} is a file; name a new or empty directory", dir.display());
    }
    let marker = downloading_marker(dir)?;
    // Earlier versions kept the marker inside the directory; it moves out, where dfx cannot
    // mistake it for the download's.
    let inside = dir.join(".downloading.json");
    if inside.is_file() && !marker.exists() {
        std::fs::rename(&inside, &marker)
            .with_context(|| format!("cannot move {} beside it", inside.display()))?;
    }
    if marker.is_file() {
        let unfinished: Downloading = serde_json::from_slice(&std::fs::read(&marker)?)
            .with_context(|| {
                format!("{} is damaged; delete {}", marker.display(), dir.display())
            })?;
        if unfinished.snapshot_id != id.to_string() || unfinished.canister_id != canister {
            bail!(
                "{} holds an unfinished download of snapshot {} of {}; finish that one (`cargo xtask download {} -o {}`) or choose another directory",
                dir.display(),
                unfinished.snapshot_id,
                unfinished.canister_id,
                unfinished.snapshot_id,
                dir.display()
            );
        }
        return Ok(if Layout::new(dir).has_metadata() {
            Prior::Partial
        } else {
            Prior::Nothing
        });
    }
    if let Some(manifest) = Manifest::read(dir)? {
        let same = manifest.origin.snapshot_id == id.to_string()
            && manifest.origin.canister_id == canister;
        if same && manifest.problems(dir)?.is_empty() {
            return Ok(Prior::Done(Box::new(manifest)));
        }
        bail!(
            "{} already holds a backup of snapshot {} of {}; choose another directory",
            dir.display(),
            manifest.origin.snapshot_id,
            manifest.origin.canister_id
        );
    }
    if entries(dir)? > 0 {
        bail!(
            "{} is not empty and holds no download; choose a new or empty directory",
            dir.display()
        );
    }
    Ok(Prior::Nothing)
}

/// How many entries `dir` holds, not counting tools' bookkeeping.
fn entries(dir: &Path) -> Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name();
        if !is_bookkeeping(&name) {
            count += 1;
        }
    }
    Ok(count)
}
