//! A canister's persisted state: settings, status, code and memories, chunk store, logs,
//! history and snapshots — everything `canister_status` and the snapshot methods report.

use std::collections::{BTreeMap, VecDeque};

use candid::{Nat, Principal};
use ic_management_canister_types as ic;
use serde::{Deserialize, Serialize};

use super::calls::Calls;
use super::chunks;
use super::engine::Global;
use super::image::MemoryImage;
use crate::store::Hash;

/// Who may see a canister's logs, snapshots or status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    Controllers,
    Public,
    AllowedViewers(Vec<Principal>),
}

impl Visibility {
    pub fn allows(&self, caller: &Principal, controllers: &[Principal]) -> bool {
        match self {
            Self::Public => true,
            Self::Controllers => controllers.contains(caller),
            Self::AllowedViewers(viewers) => {
                controllers.contains(caller) || viewers.contains(caller)
            }
        }
    }
}

/// The settings of `canister_status`, with the IC's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub controllers: Vec<Principal>,
    pub compute_allocation: u64,
    pub memory_allocation: u64,
    pub freezing_threshold: u64,
    pub reserved_cycles_limit: u128,
    pub minimum_incoming_canister_call_cycles: u128,
    pub wasm_memory_limit: u64,
    pub wasm_memory_threshold: u64,
    pub log_memory_limit: u64,
    pub log_visibility: Visibility,
    pub snapshot_visibility: Visibility,
    pub status_visibility: Visibility,
    pub environment_variables: Vec<(String, String)>,
}

impl Settings {
    pub fn new(controllers: Vec<Principal>) -> Self {
        Self {
            controllers,
            compute_allocation: 0,
            memory_allocation: 0,
            freezing_threshold: 2_592_000,
            reserved_cycles_limit: 5_000_000_000_000,
            minimum_incoming_canister_call_cycles: 0,
            // The replica's default for new canisters: 3 GiB.
            wasm_memory_limit: 3 << 30,
            wasm_memory_threshold: 0,
            log_memory_limit: 4096,
            log_visibility: Visibility::Controllers,
            snapshot_visibility: Visibility::Controllers,
            status_visibility: Visibility::Controllers,
            environment_variables: Vec::new(),
        }
    }
}

/// Installed code and the memories it runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    /// SHA-256 of the module as installed (the `module_hash`).
    pub module: Hash,
    pub module_size: u64,
    pub heap: MemoryImage,
    pub stable: MemoryImage,
    pub globals: Vec<Global>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Running,
    Stopping,
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub index: u64,
    pub timestamp: u64,
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(with = "serde_bytes")]
    pub id: Vec<u8>,
    pub taken_at: u64,
    /// For a snapshot made by metadata upload: its module as uploaded so far (`code.module`
    /// is filled in from it when the snapshot is loaded).
    pub uploaded_module: Option<MemoryImage>,
    pub code: Code,
    #[serde(with = "serde_bytes")]
    pub certified_data: Vec<u8>,
    /// Chunk hash → size.
    pub chunks: BTreeMap<Hash, u64>,
    pub canister_version: u64,
    /// The global timer (0: inactive). `None` only for an uploaded snapshot whose metadata
    /// left it out: loading it keeps the canister's timer.
    pub global_timer: Option<u64>,
}

impl Snapshot {
    /// Made by `upload_canister_snapshot_metadata` rather than taken from the canister.
    pub fn uploaded(&self) -> bool {
        self.uploaded_module.is_some()
    }

    /// `total_size` as the IC counts it: module, memories, globals, chunks, certified data.
    pub fn size(&self) -> u64 {
        self.code.module_size
            + self.code.heap.len
            + self.code.stable.len
            + 8 * self.code.globals.len() as u64
            + chunks::usage(&self.chunks)
            + self.certified_data.len() as u64
    }
}

/// One entry of the canister history, in the management canister's own type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub timestamp: u64,
    pub canister_version: u64,
    pub origin: Principal,
    pub details: ChangeKind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ChangeKind {
    Creation(Vec<Principal>),
    Install {
        mode: String,
        module_hash: Hash,
    },
    Uninstall,
    Controllers(Vec<Principal>),
    LoadSnapshot {
        snapshot_id: Vec<u8>,
        canister_version: u64,
        taken_at: u64,
        uploaded: bool,
    },
}

/// Everything the replica keeps about one canister.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CanisterState {
    pub id: Principal,
    pub settings: Settings,
    pub status: Status,
    pub version: u64,
    pub cycles: u128,
    pub code: Option<Code>,
    #[serde(with = "serde_bytes")]
    pub certified_data: Vec<u8>,
    pub global_timer: u64,
    pub chunks: BTreeMap<Hash, u64>,
    pub logs: VecDeque<LogRecord>,
    pub next_log_index: u64,
    pub history: VecDeque<HistoryEntry>,
    pub total_changes: u64,
    pub next_snapshot: u64,
    pub snapshots: Vec<Snapshot>,
    /// The calls it answers and waits on.
    #[serde(default)]
    pub calls: Calls,
}

/// The canister history keeps at least this many recent changes (IC interface spec).
pub const HISTORY_KEPT: usize = 20;

impl CanisterState {
    pub fn new(id: Principal, settings: Settings, cycles: u128) -> Self {
        Self {
            id,
            settings,
            status: Status::Running,
            version: 0,
            cycles,
            code: None,
            certified_data: Vec::new(),
            global_timer: 0,
            chunks: BTreeMap::new(),
            logs: VecDeque::new(),
            next_log_index: 0,
            history: VecDeque::new(),
            total_changes: 0,
            next_snapshot: 0,
            snapshots: Vec::new(),
            calls: Calls::default(),
        }
    }

    pub fn record(&mut self, timestamp: u64, origin: Principal, details: ChangeKind) {
        self.history.push_back(HistoryEntry {
            timestamp,
            canister_version: self.version,
            origin,
            details,
        });
        if self.history.len() > HISTORY_KEPT {
            self.history.pop_front();
        }
        self.total_changes += 1;
    }

    /// Appends log lines, dropping the oldest beyond the log memory limit.
    pub fn log(&mut self, lines: impl IntoIterator<Item = (u64, Vec<u8>)>) {
        for (timestamp, content) in lines {
            self.logs.push_back(LogRecord {
                index: self.next_log_index,
                timestamp,
                content,
            });
            self.next_log_index += 1;
        }
        let limit = self.settings.log_memory_limit as usize;
        let mut size: usize = self.logs.iter().map(|r| r.content.len()).sum();
        while size > limit {
            let Some(oldest) = self.logs.pop_front() else {
                break;
            };
            size -= oldest.content.len();
        }
    }

    pub fn is_controller(&self, principal: &Principal) -> bool {
        self.settings.controllers.contains(principal)
    }

    pub fn snapshots_size(&self) -> u64 {
        self.snapshots.iter().map(Snapshot::size).sum()
    }

    pub fn chunk_store_size(&self) -> u64 {
        chunks::usage(&self.chunks)
    }
}

pub fn nat(n: impl Into<u128>) -> Nat {
    Nat::from(n.into())
}

/// The management canister has one visibility type per setting, all of the same shape.
macro_rules! visibility_conversions {
    ($($ic:ident),*) => {$(
        impl From<&Visibility> for ic::$ic {
            fn from(v: &Visibility) -> Self {
                match v {
                    Visibility::Controllers => Self::Controllers,
                    Visibility::Public => Self::Public,
                    Visibility::AllowedViewers(p) => Self::AllowedViewers(p.clone()),
                }
            }
        }

        impl From<ic::$ic> for Visibility {
            fn from(v: ic::$ic) -> Self {
                match v {
                    ic::$ic::Controllers => Self::Controllers,
                    ic::$ic::Public => Self::Public,
                    ic::$ic::AllowedViewers(p) => Self::AllowedViewers(p),
                }
            }
        }
    )*};
}

visibility_conversions!(LogVisibility, SnapshotVisibility, StatusVisibility);

impl From<&Settings> for ic::DefiniteCanisterSettings {
    fn from(s: &Settings) -> Self {
        Self {
            controllers: s.controllers.clone(),
            compute_allocation: nat(s.compute_allocation),
            memory_allocation: nat(s.memory_allocation),
            freezing_threshold: nat(s.freezing_threshold),
            reserved_cycles_limit: nat(s.reserved_cycles_limit),
            minimum_incoming_canister_call_cycles: nat(s.minimum_incoming_canister_call_cycles),
            log_visibility: (&s.log_visibility).into(),
            log_memory_limit: nat(s.log_memory_limit),
            snapshot_visibility: (&s.snapshot_visibility).into(),
            status_visibility: (&s.status_visibility).into(),
            wasm_memory_limit: nat(s.wasm_memory_limit),
            wasm_memory_threshold: nat(s.wasm_memory_threshold),
            environment_variables: s
                .environment_variables
                .iter()
                .map(|(name, value)| ic::EnvironmentVariable {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }
    }
}
