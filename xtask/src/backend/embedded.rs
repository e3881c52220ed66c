//! The embedded replica, in-process: its state lives under the project's state directory, so
//! separate invocations see the same canister and snapshots.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use candid::{CandidType, Decode, Encode, IDLArgs, Principal};
use ic_management_canister_types as ic;
use replica::{Reject, Replica};
use serde::de::DeserializeOwned;

use super::transfer;
use super::{Backend, SnapshotId, SnapshotInfo, Status};
use crate::backup::layout::Layout;

pub struct Embedded {
    dir: PathBuf,
    replica: Option<Replica>,
    ran: Vec<String>,
}

/// Who the xtask calls as: the anonymous principal, as icp-cli's default identity.
fn me() -> Principal {
    Principal::anonymous()
}

impl Embedded {
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("embedded");
        let replica = Replica::open(&dir).with_context(|| "cannot open the embedded replica")?;
        Ok(Self {
            dir,
            replica: Some(replica),
            ran: Vec::new(),
        })
    }

    fn replica(&mut self) -> &mut Replica {
        self.replica.as_mut().expect("open between commands")
    }

    fn canister_file(&self) -> PathBuf {
        self.dir.join("chat-canister-id")
    }

    fn canister(&self) -> Result<Principal> {
        let text = std::fs::read_to_string(self.canister_file()).map_err(|_| {
            anyhow!("no chat canister on the embedded replica yet: run `cargo xtask deploy` first")
        })?;
        Principal::from_text(text.trim())
            .context("the recorded canister id is damaged; run `cargo xtask start`")
    }

    fn manage<A: CandidType, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &str,
        arg: A,
    ) -> Result<R> {
        let canister = self.canister().map(|c| c.to_text()).unwrap_or_default();
        self.ran.push(format!("aaaaa-aa.{method}({canister})"));
        let bytes = Encode!(&arg)?;
        let reply = self
            .replica()
            .update(me(), Principal::management_canister(), method, &bytes)
            .map_err(explain)?;
        Ok(Decode!(&reply, R)?)
    }

    /// Creates an empty canister and makes it the one this backend drives.
    pub fn create_canister(&mut self) -> Result<Principal> {
        let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
            amount: None,
            settings: None,
            specified_id: None,
            sender_canister_version: None,
        };
        let created: ic::CanisterIdRecord =
            self.manage("provisional_create_canister_with_cycles", args)?;
        std::fs::write(self.canister_file(), created.canister_id.to_text())?;
        Ok(created.canister_id)
    }

    /// Runs `f` with a caller of management methods that records nothing: transfers make
    /// hundreds of calls, shown as one line.
    fn transfer<T>(&mut self, f: impl FnOnce(&mut transfer::Call) -> Result<T>) -> Result<T> {
        let replica = self.replica();
        let mut call = |method: &str, arg: Vec<u8>| {
            replica
                .update(me(), Principal::management_canister(), method, &arg)
                .map_err(explain)
        };
        f(&mut call)
    }

    fn record(&self) -> Result<ic::CanisterIdRecord> {
        Ok(ic::CanisterIdRecord {
            canister_id: self.canister()?,
        })
    }
}

/// A reject as one line a user can act on.
fn explain(reject: Reject) -> anyhow::Error {
    anyhow!("the replica rejected the call: {reject}")
}

impl Backend for Embedded {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn describe(&self) -> String {
        format!("embedded replica, state in {}", self.dir.display())
    }

    fn clean_start(&mut self) -> Result<()> {
        self.ran.push(format!("rm -r {}", self.dir.display()));
        // The lock is held by the open replica: close it before wiping its directory.
        self.replica = None;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("cannot remove {}", self.dir.display()))?;
        }
        self.replica = Some(Replica::open(&self.dir)?);
        Ok(())
    }

    fn deploy(&mut self, wasm: &Path) -> Result<String> {
        let module =
            std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let canister = match self.canister() {
            Ok(canister) if self.replica().canister_ids().contains(&canister) => canister,
            _ => self.create_canister()?,
        };
        let installed = self.status()?.module_hash.is_some();
        let mode = if installed {
            ic::CanisterInstallMode::Upgrade(None)
        } else {
            ic::CanisterInstallMode::Install
        };
        let args = ic::InstallCodeArgs {
            mode,
            canister_id: canister,
            wasm_module: module,
            arg: Encode!()?,
            sender_canister_version: None,
        };
        self.manage::<_, ()>("install_code", args)?;
        Ok(canister.to_text())
    }

    fn call(&mut self, method: &str, args: &IDLArgs, query: bool) -> Result<Vec<u8>> {
        let canister = self.canister()?;
        let kind = if query { "query" } else { "update" };
        self.ran.push(format!("{kind} {canister}.{method}{args}"));
        let bytes = args.to_bytes()?;
        let replica = self.replica();
        let reply = if query {
            replica.query(me(), canister, method, &bytes)
        } else {
            replica.update(me(), canister, method, &bytes)
        };
        reply.map_err(explain)
    }

    fn stop_canister(&mut self) -> Result<()> {
        let record = self.record()?;
        self.manage("stop_canister", record)
    }

    fn start_canister(&mut self) -> Result<()> {
        let record = self.record()?;
        self.manage("start_canister", record)
    }

    fn status(&mut self) -> Result<Status> {
        let record = self.record()?;
        let status: ic::CanisterStatusResult = self.manage("canister_status", record)?;
        Ok(Status {
            canister: self.canister()?.to_text(),
            status: format!("{:?}", status.status).to_lowercase(),
            module_hash: status.module_hash.map(|h| SnapshotId(h).to_string()),
        })
    }

    fn snapshot_create(&mut self, replace: Option<&SnapshotId>) -> Result<SnapshotId> {
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id: self.canister()?,
            replace_snapshot: replace.map(|id| id.0.clone()),
            uninstall_code: None,
            sender_canister_version: None,
        };
        let snapshot: ic::Snapshot = self.manage("take_canister_snapshot", args)?;
        Ok(SnapshotId(snapshot.id))
    }

    fn snapshot_list(&mut self) -> Result<Vec<SnapshotInfo>> {
        let record = self.record()?;
        let snapshots: Vec<ic::Snapshot> = self.manage("list_canister_snapshots", record)?;
        Ok(snapshots
            .into_iter()
            .map(|s| SnapshotInfo::new(SnapshotId(s.id), s.taken_at_timestamp, s.total_size))
            .collect())
    }

    fn snapshot_load(&mut self, id: &SnapshotId) -> Result<()> {
        let args = ic::LoadCanisterSnapshotArgs {
            canister_id: self.canister()?,
            snapshot_id: id.0.clone(),
            sender_canister_version: None,
        };
        self.manage("load_canister_snapshot", args)
    }

    fn snapshot_delete(&mut self, id: &SnapshotId) -> Result<()> {
        let args = ic::DeleteCanisterSnapshotArgs {
            canister_id: self.canister()?,
            snapshot_id: id.0.clone(),
        };
        self.manage("delete_canister_snapshot", args)
    }

    fn snapshot_download(&mut self, id: &SnapshotId, dir: &Path, resume: bool) -> Result<()> {
        let canister = self.canister()?;
        self.ran.push(format!(
            "aaaaa-aa.read_canister_snapshot_metadata/data({canister}, {id}) in slices of ≤ {} bytes → {}",
            transfer::SLICE_BYTES,
            dir.display()
        ));
        let layout = Layout::new(dir);
        self.transfer(|call| transfer::download(call, canister, &id.0, &layout, resume))
    }

    fn snapshot_upload(&mut self, dir: &Path, replace: Option<&SnapshotId>) -> Result<SnapshotId> {
        let canister = self.canister()?;
        self.ran.push(format!(
            "aaaaa-aa.upload_canister_snapshot_metadata/data({canister}) in slices of ≤ {} bytes ← {}",
            transfer::SLICE_BYTES,
            dir.display()
        ));
        let layout = Layout::new(dir);
        let replace = replace.map(|id| id.0.as_slice());
        self.transfer(|call| transfer::upload(call, canister, &layout, replace))
            .map(SnapshotId)
    }

    fn tool_version(&mut self) -> Result<(String, String)> {
        Ok(("replica".into(), replica::VERSION.into()))
    }

    /// The embedded replica runs only while a command does, and its state is already
    /// committed: there is nothing to shut down.
    fn shut_down(&mut self) -> Result<()> {
        Ok(())
    }

    fn ran(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ran)
    }
}
