//! Backups that outlive the canister: a snapshot on disk in the layout dfx and icp-cli read
//! and write, sealed by a manifest; the marker of an unfinished download; what
//! a command names as a snapshot.

pub mod contents;
pub mod layout;
pub mod manifest;
pub mod set_dir;

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{Result, bail};

use layout::Layout;
use manifest::{MANIFEST, Manifest};
use serde::{Deserialize, Serialize};

use crate::ids::SnapshotId;

/// The marker of an unfinished download into `dir`, naming what it downloads. It lies beside
/// the directory, not in it: dfx downloads only into an empty directory (unless resuming).
pub fn downloading_marker(dir: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(dir)?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        bail!(
            "{} cannot hold a backup; name a directory, e.g. -o backups/chat",
            dir.display()
        );
    };
    Ok(parent.join(format!(".{}.downloading.json", name.to_string_lossy())))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloading {
    pub canister_id: String,
    pub snapshot_id: String,
}

/// A backup is damaged or incomplete: nothing was changed (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(pub String);

/// A snapshot named on the command line: a backup directory, or an id on the canister.
#[derive(Clone, Debug)]
pub enum Source {
    Dir(PathBuf),
    Id(SnapshotId),
}

impl FromStr for Source {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let path = PathBuf::from(text);
        if path.is_dir() {
            return Ok(Self::Dir(path));
        }
        match text.parse() {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => bail!(
                "`{text}` is neither a directory nor a snapshot id: name a backup directory (from `cargo xtask download`) or an id from `cargo xtask list`"
            ),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::Id(id) => write!(f, "snapshot {id}"),
        }
    }
}

/// The backup in `dir`, checked: its manifest (and every file against it) when it has one;
/// without one, only that its files are all there, and only when `unverified` allows it.
pub fn check(dir: &Path, unverified: bool) -> Result<Option<Manifest>> {
    if !dir.is_dir() {
        bail!(
            "no directory {}: name a backup made by `cargo xtask download`",
            dir.display()
        );
    }
    if downloading_marker(dir)?.is_file() {
        return Err(Damaged(format!(
            "{} holds an unfinished download: run the same `cargo xtask download` again to finish it",
            dir.display()
        ))
        .into());
    }
    let manifest = Manifest::read(dir).map_err(|e| {
        Damaged(format!(
            "{} is damaged: {e:#}; nothing was changed",
            dir.display()
        ))
    })?;
    match &manifest {
        Some(manifest) => {
            let problems = manifest.problems(dir)?;
            if !problems.is_empty() {
                return Err(Damaged(format!(
                    "{} is damaged: {}; nothing was changed",
                    dir.display(),
                    problems.join("; ")
                ))
                .into());
            }
        }
        None if !unverified => bail!(
            "{} has no {MANIFEST} (it was not made by `cargo xtask download`), so its integrity cannot be checked; pass --unverified to use it as it is",
            dir.display()
        ),
        None => {}
    }
    let layout = Layout::new(dir);
    let metadata = layout.read_metadata()?;
    layout
        .check_sizes(&metadata)
        .map_err(|e| Damaged(format!("{e:#}")))?;
    Ok(manifest)
}
