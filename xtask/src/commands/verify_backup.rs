//! `cargo xtask verify-backup`: every file of a backup checked against its manifest, with
//! no backend; a damaged one exits 4 naming what is wrong.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::download::BackupSummary;
use super::{Context, Run};
use crate::backup::{self, manifest::MANIFEST, set_dir::SetManifest};

#[derive(Args)]
pub struct VerifyBackup {
    dir: PathBuf,
}

#[derive(Serialize)]
pub struct Intact {
    pub intact: bool,
    #[serde(flatten)]
    pub backup: BackupSummary,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Checked {
    One(Intact),
    Set {
        intact: bool,
        set_id: String,
        members: Vec<Intact>,
    },
}

impl Run for VerifyBackup {
    type Output = Checked;

    fn run(self, cx: &mut Context) -> Result<Checked> {
        let Some(set) = SetManifest::read(&self.dir)? else {
            return intact(cx, &self.dir).map(Checked::One);
        };
        let mut members = Vec::new();
        for member in &set.members {
            members.push(intact(cx, &SetManifest::member_dir(&self.dir, member))?);
        }
        cx.out.say(format!(
            "  set {}: every member's backup is intact",
            set.set_id
        ));
        Ok(Checked::Set {
            intact: true,
            set_id: set.set_id,
            members,
        })
    }
}

/// Every file of the backup in `dir` checked against its manifest.
fn intact(cx: &mut Context, dir: &std::path::Path) -> Result<Intact> {
    let Some(manifest) = backup::check(dir, true)? else {
        bail!(
            "{} has no {MANIFEST}: only backups made by `cargo xtask download` can be verified",
            dir.display()
        );
    };
    cx.out.say(format!(
        "  intact: {} files, {}, snapshot {} of {} taken at {}",
        manifest.files.len(),
        indicatif::HumanBytes(manifest.bytes()),
        manifest.origin.snapshot_id,
        manifest.origin.canister_id,
        manifest.origin.taken_at_utc
    ));
    Ok(Intact {
        intact: true,
        backup: BackupSummary::of(dir, &manifest),
    })
}
