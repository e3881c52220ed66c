//! `cargo xtask clone --from SRC --to DST [ID]`: a snapshot of one canister (the newest when
//! none is named) copied onto another and loaded there — downloaded, uploaded to DST as a
//! snapshot of its own, loaded with DST stopped — then DST verified against what SRC was when
//! the snapshot was taken: its module hash and its check query's answer.

use anyhow::{Context as _, Result};
use clap::Args;
use serde::Serialize;

use super::verify::{Verified, verify};
use super::{Context, Run};
use crate::backend::{CanisterRef, SnapshotId};
use crate::backup::contents::Contents;
use crate::records::Recorded;

#[derive(Args)]
pub struct Clone {
    /// The canister whose snapshot is copied.
    #[arg(long, value_name = "NAME|ID")]
    from: CanisterRef,
    /// The canister it is loaded onto; its own state is replaced.
    #[arg(long, value_name = "NAME|ID")]
    to: CanisterRef,
    /// The snapshot of SRC [default: its newest].
    id: Option<SnapshotId>,
}

#[derive(Serialize)]
pub struct Cloned {
    pub from: String,
    pub to: String,
    /// SRC's snapshot, and the copy uploaded to DST.
    pub source_snapshot: SnapshotId,
    pub snapshot_id: SnapshotId,
    pub verified: Verified,
}

impl Run for Clone {
    type Output = Cloned;

    fn run(self, cx: &mut Context) -> Result<Cloned> {
        let session = cx.set_session()?;
        let named = session.canister.clone();
        session.canister = self.from.clone();
        let source = session.resolve(self.id.as_ref());
        let fetched = source.and_then(|(_, info)| Ok((info.id.clone(), session.fetch(&info.id)?)));
        session.canister = self.to.clone();
        let result = fetched.and_then(|(source, dir)| {
            let uploaded = session.backend.snapshot_upload(&self.to, dir.path(), None);
            session.show();
            let copy = uploaded.context("uploading the copy to the target")?;
            session.while_stopped(|s| {
                let loaded = s.backend.snapshot_load(&self.to, &copy);
                s.show();
                loaded
            })?;
            // A snapshot the tool did not take has no check recorded: its module stands for it.
            let recorded = match session.records.taken.get(&source.to_string()) {
                Some(recorded) => recorded.clone(),
                None => Recorded {
                    module_hash: Some(Contents::read(dir.path())?.module_hash),
                    check: None,
                },
            };
            session.records.taken.insert(copy.to_string(), recorded);
            session.save()?;
            session.say(format!(
                "  {} now holds snapshot {source} of {} (uploaded as {copy})",
                self.to, self.from
            ));
            let verified = verify(session, Some(&copy))?;
            Ok(Cloned {
                from: self.from.to_string(),
                to: self.to.to_string(),
                source_snapshot: source,
                snapshot_id: copy,
                verified,
            })
        });
        session.canister = named;
        result
    }
}
