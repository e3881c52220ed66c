//! `cargo xtask upload`: a backup, checked against its manifest, uploaded as a new snapshot.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::backup::{self, set_dir::SetManifest};
use crate::lifecycle::Session;
use crate::records::{Member, SnapshotSet};

#[derive(Args)]
pub struct Upload {
    dir: PathBuf,
    /// Replace this snapshot (the new one gets a new id).
    #[arg(long)]
    replace: Option<SnapshotId>,
    /// Upload a directory that has no manifest (from dfx or icp-cli) as it is.
    #[arg(long)]
    unverified: bool,
    /// Upload a backup of another canister onto this one.
    #[arg(long)]
    any_canister: bool,
}

#[derive(Serialize)]
pub struct Uploaded {
    pub snapshot_id: SnapshotId,
    pub replaced: Option<SnapshotId>,
    pub from: PathBuf,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Uploading {
    One(Uploaded),
    Set {
        /// The new set the uploaded snapshots form; `restore --set` loads it.
        set_id: String,
        snapshots: Vec<SnapshotId>,
        from: PathBuf,
    },
}

impl Run for Upload {
    type Output = Uploading;

    fn run(self, cx: &mut Context) -> Result<Uploading> {
        let Some(set) = SetManifest::read(&self.dir)? else {
            let session = cx.session()?;
            return upload_one(session, &self, &self.dir).map(Uploading::One);
        };
        if self.replace.is_some() {
            bail!("--replace is for one canister's backup; a set's upload adds new snapshots");
        }
        // Every member is checked before anything is uploaded.
        for member in &set.members {
            backup::check(&SetManifest::member_dir(&self.dir, member), self.unverified)?;
        }
        let session = cx.set_session()?;
        let named = session.canister.clone();
        let mut snapshots = Vec::new();
        let mut members = Vec::new();
        for member in &set.members {
            session.canister = member.canister.parse()?;
            let uploaded = upload_one(session, &self, &SetManifest::member_dir(&self.dir, member));
            session.canister = named.clone();
            let uploaded = uploaded.with_context(|| {
                format!(
                    "uploading {}'s backup failed; the members uploaded before it stay as snapshots of their own: {}",
                    member.canister,
                    snapshots.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                )
            })?;
            members.push(Member {
                canister: member.canister.clone(),
                snapshot_id: uploaded.snapshot_id.to_string(),
            });
            snapshots.push(uploaded.snapshot_id);
        }
        // An uploaded snapshot is taken when it is uploaded, on the IC as here.
        let now = crate::lifecycle::unix_now();
        let new = SnapshotSet {
            taken_at: crate::backend::utc(now),
            taken_at_ns: now,
            members,
        };
        let set_id = session.record_set(new, &snapshots)?;
        session.say(format!(
            "  uploaded set {} as set {set_id}; `cargo xtask restore --set {set_id}` loads it",
            set.set_id
        ));
        Ok(Uploading::Set {
            set_id,
            snapshots,
            from: self.dir,
        })
    }
}

/// Checks the backup in `dir`, then uploads it as a new snapshot of the session's canister.
fn upload_one(session: &mut Session, options: &Upload, dir: &Path) -> Result<Uploaded> {
    let replace = options.replace.as_ref();
    let manifest = backup::check(dir, options.unverified)?;
    let status = session.backend.status(&session.canister);
    session.show();
    let canister = status?.canister;
    if let Some(from) = manifest.as_ref().map(|m| &m.origin.canister_id)
        && *from != canister
        && !options.any_canister
    {
        bail!(
            "{} is a backup of canister {from}, not of {} ({canister}); nothing was uploaded — pass --any-canister to put it on {canister} anyway",
            dir.display(),
            session.canister
        );
    }
    if let Some(replace) = replace {
        session.resolve(Some(replace))?;
    }
    let uploaded = session
        .backend
        .snapshot_upload(&session.canister, dir, replace);
    session.show();
    let id = uploaded?;
    session.remember_upload(&id, replace, manifest.as_ref())?;
    session.say(format!(
        "  uploaded {} as snapshot {id}; `cargo xtask restore {id}` loads it",
        dir.display()
    ));
    Ok(Uploaded {
        snapshot_id: id,
        replaced: options.replace.clone(),
        from: dir.to_owned(),
    })
}
