//! A temporary embedded replica that loads a snapshot from a directory into a scratch
//! canister and reads its chat: how `inspect` and `diff` read a backup without touching the
//! live canister, or any network — a snapshot downloaded from mainnet reads offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use candid::{Decode, IDLArgs, IDLValue};

use super::Session;
use crate::backend::{Backend, CanisterRef, Embedded};
use crate::backup::{self, Source};
use crate::query::Check;

pub struct Scratch {
    backend: Embedded,
    _dir: tempfile::TempDir,
}

/// The most messages asked for at once; `page` returns fewer when a reply would pass 2 MiB.
const PAGE: u32 = 10_000;

impl Scratch {
    pub fn new() -> Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
        Ok(Self {
            backend: Embedded::open(dir.path())?,
            _dir: dir,
        })
    }

    /// Loads the snapshot in `dir` into a new canister, running.
    pub fn load(&mut self, dir: &Path) -> Result<CanisterRef> {
        let canister = CanisterRef::Id(self.backend.create_canister()?);
        let id = self.backend.snapshot_upload(&canister, dir, None)?;
        self.backend.stop_canister(&canister)?;
        self.backend.snapshot_load(&canister, &id)?;
        self.backend.start_canister(&canister)?;
        self.backend.ran();
        Ok(canister)
    }

    /// Loads the snapshot in `dir` and asks `check` of it; the answer, as Candid bytes.
    pub fn ask(&mut self, dir: &Path, check: &Check) -> Result<Vec<u8>> {
        let canister = self.load(dir)?;
        let answer = self
            .backend
            .call(&canister, &check.method, &check.idl_args()?, true);
        self.backend.ran();
        answer.with_context(|| format!("the snapshot loads, but `{check}` fails on it"))
    }

    /// Loads the snapshot in `dir` and returns its chat.
    pub fn chat(&mut self, dir: &Path) -> Result<Vec<String>> {
        let canister = self.load(dir)?;
        read_chat(&mut self.backend, &canister).context(
            "the snapshot loads, but its canister does not answer as the chat does (`len`, `page`): is it a backup of another canister?",
        )
    }
}

/// Every message, a page at a time: `dump` fails once a chat passes the reply limit.
fn read_chat(backend: &mut dyn Backend, canister: &CanisterRef) -> Result<Vec<String>> {
    let reply = backend.call(canister, "len", &IDLArgs::new(&[]), true)?;
    let len = Decode!(&reply, u64)?;
    let mut chat = Vec::with_capacity(len as usize);
    while (chat.len() as u64) < len {
        let args = IDLArgs::new(&[IDLValue::Nat64(chat.len() as u64), IDLValue::Nat32(PAGE)]);
        let reply = backend.call(canister, "page", &args, true)?;
        let page = Decode!(&reply, Vec<String>)?;
        if page.is_empty() {
            bail!(
                "the chat says it holds {len} messages but returns none after {}",
                chat.len()
            );
        }
        chat.extend(page);
    }
    Ok(chat)
}

/// A snapshot's directory: the one named, checked against its manifest when it has one, or
/// a temporary one that a snapshot named by id was downloaded into through `session`.
pub struct SnapshotDir {
    pub path: PathBuf,
    _downloaded: Option<tempfile::TempDir>,
}

impl SnapshotDir {
    pub fn of(source: &Source, session: Option<&mut Session>) -> Result<Self> {
        match source {
            Source::Dir(dir) => {
                backup::check(dir, true)?;
                Ok(Self {
                    path: dir.clone(),
                    _downloaded: None,
                })
            }
            Source::Id(id) => {
                let session = session.ok_or_else(|| anyhow!("reading {source} needs a backend"))?;
                let dir = session.fetch(id)?;
                Ok(Self {
                    path: dir.path().to_owned(),
                    _downloaded: Some(dir),
                })
            }
        }
    }
}
