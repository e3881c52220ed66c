//! The embedded replica, in-process: its state lives under the project's state directory, so
//! separate invocations see the same canister and snapshots.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, anyhow, bail};
use candid::{CandidType, Decode, Encode, IDLArgs, Principal};
use ic_management_canister_types as ic;
use replica::{Reject, Replica};
use serde::de::DeserializeOwned;

use super::transfer;
use super::{Backend, Budget, CanisterRef, SnapshotId, SnapshotInfo, Status};
use crate::backup::layout::Layout;
use crate::build::CANDID_METADATA as CANDID_SERVICE;
use crate::query::Interface;

pub struct Embedded {
    dir: PathBuf,
    replica: Option<Replica>,
    /// Who the xtask calls as: its own identity (`crate::identity`), never anonymous.
    me: Principal,
    ran: Vec<String>,
}

impl Embedded {
    pub fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("embedded");
        let me = crate::identity::load_or_create(state_dir)?;
        let replica = Replica::open(&dir).with_context(|| "cannot open the embedded replica")?;
        Ok(Self {
            dir,
            replica: Some(replica),
            me,
            ran: Vec::new(),
        })
    }

    fn replica(&mut self) -> &mut Replica {
        self.replica.as_mut().expect("open between commands")
    }

    /// The names of the canisters deployed here, as dfx keeps them in canister_ids.json.
    fn names_file(&self) -> PathBuf {
        self.dir.join("canister_ids.json")
    }

    fn names(&self) -> Result<BTreeMap<String, Principal>> {
        let path = self.names_file();
        let mut names: BTreeMap<String, Principal> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is damaged; run `cargo xtask start`", path.display())
            })?,
            Err(_) => BTreeMap::new(),
        };
        // Earlier versions kept the chat's id alone in a file of its own.
        if let Ok(text) = std::fs::read_to_string(self.dir.join("chat-canister-id"))
            && let Ok(id) = Principal::from_text(text.trim())
        {
            names.entry("chat".into()).or_insert(id);
        }
        Ok(names)
    }

    fn name(&self, name: &str, id: Principal) -> Result<()> {
        let mut names = self.names()?;
        names.insert(name.to_owned(), id);
        crate::backup::layout::write_atomically(&self.names_file(), &serde_json::to_vec(&names)?)
    }

    /// The id of `canister`: an id as it is, a name as deployed here.
    fn resolve(&self, canister: &CanisterRef) -> Result<Principal> {
        match canister {
            CanisterRef::Id(id) => Ok(*id),
            CanisterRef::Name(name) => self.names()?.get(name).copied().ok_or_else(|| {
                let deploy = if canister.is_chat() {
                    "`cargo xtask deploy`".to_owned()
                } else {
                    format!("`cargo xtask deploy --canister {name} --wasm FILE`")
                };
                anyhow!("no canister `{name}` on the embedded replica yet: run {deploy} first")
            }),
        }
    }

    fn manage<A: CandidType, R: CandidType + DeserializeOwned>(
        &mut self,
        method: &str,
        canister: Option<Principal>,
        arg: A,
    ) -> Result<R> {
        let canister = canister.map(|c| c.to_text()).unwrap_or_default();
        self.ran.push(format!("aaaaa-aa.{method}({canister})"));
        let bytes = Encode!(&arg)?;
        let me = self.me;
        let reply = self
            .replica()
            .update(me, Principal::management_canister(), method, &bytes)
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
            self.manage("provisional_create_canister_with_cycles", None, args)?;
        Ok(created.canister_id)
    }

    /// Runs `f` with a caller of management methods that records nothing: transfers make
    /// hundreds of calls, shown as one line.
    fn transfer<T>(&mut self, f: impl FnOnce(&mut transfer::Call) -> Result<T>) -> Result<T> {
        let me = self.me;
        let replica = self.replica();
        let mut call = |method: &str, arg: Vec<u8>| {
            replica
                .update(me, Principal::management_canister(), method, &arg)
                .map_err(explain)
        };
        f(&mut call)
    }

    /// The interface `canister` declares in its `candid:service` metadata, if it does.
    pub fn interface(&mut self, canister: Principal) -> Result<Option<Interface>> {
        let facts = self.replica().facts();
        let did = facts
            .into_iter()
            .find(|f| f.id == canister)
            .and_then(|f| {
                f.metadata
                    .into_iter()
                    .find(|(_, name, _)| name == CANDID_SERVICE)
            })
            .map(|(_, _, bytes)| String::from_utf8_lossy(&bytes).into_owned());
        did.map(|did| Interface::parse(&did)).transpose()
    }

    /// Calls `method` of the management canister with `canister`'s id record.
    fn manage_canister<R: CandidType + DeserializeOwned>(
        &mut self,
        method: &str,
        canister: &CanisterRef,
    ) -> Result<R> {
        let canister_id = self.resolve(canister)?;
        self.manage(
            method,
            Some(canister_id),
            ic::CanisterIdRecord { canister_id },
        )
    }
}

/// A Candid `nat` as a number; beyond `u128` (no balance is), the largest.
fn natural(n: &candid::Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
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

    fn deploy(&mut self, target: &CanisterRef, wasm: &Path) -> Result<String> {
        let module =
            std::fs::read(wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
        let existing = self.resolve(target).ok();
        let canister = match (existing, target) {
            (Some(id), _) if self.replica().canister_ids().contains(&id) => id,
            (_, CanisterRef::Name(name)) => {
                let id = self.create_canister()?;
                self.name(name, id)?;
                id
            }
            (_, CanisterRef::Id(id)) => bail!(
                "no canister {id} on the embedded replica: deploy by name (`--canister NAME`) to create one"
            ),
        };
        let installed = self
            .status(&CanisterRef::Id(canister))?
            .module_hash
            .is_some();
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
        self.manage::<_, ()>("install_code", Some(canister), args)?;
        Ok(canister.to_text())
    }

    fn call(
        &mut self,
        canister: &CanisterRef,
        method: &str,
        args: &IDLArgs,
        query: bool,
    ) -> Result<Vec<u8>> {
        let canister = self.resolve(canister)?;
        let kind = if query { "query" } else { "update" };
        self.ran.push(format!("{kind} {canister}.{method}{args}"));
        let bytes = match self.interface(canister)? {
            Some(interface) => interface.encode(method, args)?,
            None => args.to_bytes()?,
        };
        let me = self.me;
        let replica = self.replica();
        let reply = if query {
            replica.query(me, canister, method, &bytes)
        } else {
            replica.update(me, canister, method, &bytes)
        };
        reply.map_err(explain)
    }

    fn stop_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.manage_canister("stop_canister", canister)
    }

    fn start_canister(&mut self, canister: &CanisterRef) -> Result<()> {
        self.manage_canister("start_canister", canister)
    }

    fn status(&mut self, canister: &CanisterRef) -> Result<Status> {
        let status: ic::CanisterStatusResult = self.manage_canister("canister_status", canister)?;
        Ok(Status {
            canister: self.resolve(canister)?.to_text(),
            status: format!("{:?}", status.status).to_lowercase(),
            module_hash: status.module_hash.map(|h| SnapshotId(h).to_string()),
            budget: Some(Budget {
                cycles: natural(&status.cycles),
                memory_size: natural(&status.memory_size) as u64,
                memory_allocation: natural(&status.settings.memory_allocation) as u64,
                freezing_threshold: natural(&status.settings.freezing_threshold) as u64,
                idle_cycles_burned_per_day: natural(&status.idle_cycles_burned_per_day),
            }),
        })
    }

    fn snapshot_create(
        &mut self,
        canister: &CanisterRef,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        let canister_id = self.resolve(canister)?;
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id,
            replace_snapshot: replace.map(|id| id.0.clone()),
            uninstall_code: None,
            sender_canister_version: None,
        };
        let snapshot: ic::Snapshot =
            self.manage("take_canister_snapshot", Some(canister_id), args)?;
        Ok(SnapshotId(snapshot.id))
    }

    fn snapshot_list(&mut self, canister: &CanisterRef) -> Result<Vec<SnapshotInfo>> {
        let snapshots: Vec<ic::Snapshot> =
            self.manage_canister("list_canister_snapshots", canister)?;
        Ok(snapshots
            .into_iter()
            .map(|s| SnapshotInfo::new(SnapshotId(s.id), s.taken_at_timestamp, s.total_size))
            .collect())
    }

    fn snapshot_load(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let canister_id = self.resolve(canister)?;
        let args = ic::LoadCanisterSnapshotArgs {
            canister_id,
            snapshot_id: id.0.clone(),
            sender_canister_version: None,
        };
        self.manage("load_canister_snapshot", Some(canister_id), args)
    }

    fn snapshot_delete(&mut self, canister: &CanisterRef, id: &SnapshotId) -> Result<()> {
        let canister_id = self.resolve(canister)?;
        let args = ic::DeleteCanisterSnapshotArgs {
            canister_id,
            snapshot_id: id.0.clone(),
        };
        self.manage("delete_canister_snapshot", Some(canister_id), args)
    }

    fn snapshot_download(
        &mut self,
        canister: &CanisterRef,
        id: &SnapshotId,
        dir: &Path,
        resume: bool,
    ) -> Result<()> {
        let canister = self.resolve(canister)?;
        self.ran.push(format!(
            "aaaaa-aa.read_canister_snapshot_metadata/data({canister}, {id}) in slices of ≤ {} bytes → {}",
            transfer::SLICE_BYTES,
            dir.display()
        ));
        let layout = Layout::new(dir);
        self.transfer(|call| transfer::download(call, canister, &id.0, &layout, resume))
    }

    fn snapshot_upload(
        &mut self,
        canister: &CanisterRef,
        dir: &Path,
        replace: Option<&SnapshotId>,
    ) -> Result<SnapshotId> {
        let canister = self.resolve(canister)?;
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

    fn project_canisters(&mut self) -> Result<Vec<String>> {
        let names = self.names()?;
        let live = self.replica().canister_ids();
        Ok(names
            .into_iter()
            .filter(|(_, id)| live.contains(id))
            .map(|(name, _)| name)
            .collect())
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
