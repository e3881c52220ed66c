//! `cargo xtask upload`: a backup, checked against its manifest, uploaded as a new snapshot.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backend::SnapshotId;
use crate::backup;

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

impl Run for Upload {
    type Output = Uploaded;

    fn run(self, cx: &mut Context) -> Result<Uploaded> {
        let (dir, replace) = (self.dir.as_path(), self.replace.as_ref());
        let manifest = backup::check(dir, self.unverified)?;
        let session = cx.session()?;
        let status = session.backend.status(&session.canister);
        session.show();
        let canister = status?.canister;
        if let Some(from) = manifest.as_ref().map(|m| &m.origin.canister_id)
            && *from != canister
            && !self.any_canister
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
            replaced: self.replace,
            from: self.dir,
        })
    }
}
