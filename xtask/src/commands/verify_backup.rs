//! `cargo xtask verify-backup`: every file of a backup checked against its manifest, with
//! no backend; a damaged one exits 4 naming what is wrong.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::download::BackupSummary;
use super::{Context, Run};
use crate::backup::{self, manifest::MANIFEST};

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

impl Run for VerifyBackup {
    type Output = Intact;

    fn run(self, cx: &mut Context) -> Result<Intact> {
        let dir = self.dir.as_path();
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
}
