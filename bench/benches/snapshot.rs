//! Snapshots of canisters holding 10 MiB, 100 MiB and 1 GiB in stable memory or in the wasm
//! heap: take, load (after 1 % of the pages were rewritten, plus the first call) and replace,
//! each against a memcpy of the same bytes in the same process; the disk a second snapshot
//! adds; the peak memory of a take and load at 1 GiB; the time to open a small state; and the
//! size of a snapshot of the chat against its message count, of the canister `cargo xtask build`
//! wrote (or `$CHAT_WASM`). Prints JSON lines (see `common/figures.rs`); `cargo xtask bench`
//! makes them a table. `-- --quick`: 10 MiB only, and chats of 1 and 1,000 messages.

#[path = "common/figures.rs"]
mod figures;

use std::time::Instant;

use candid::{Decode, Encode, Principal};
use figures::{Spread, at_most, report};
use ic_management_canister_types as ic;
use replica::Replica;

const MIB: u64 = 1 << 20;
const PAGE: u64 = 65536;

#[derive(Clone, Copy)]
enum Kind {
    Stable,
    Heap,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Stable => "stable memory",
            Kind::Heap => "heap",
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[u64] = if quick {
        &[10 * MIB]
    } else {
        &[10 * MIB, 100 * MIB, 1024 * MIB]
    };
    for &size in sizes {
        for kind in [Kind::Stable, Kind::Heap] {
            bench(kind, size);
        }
    }
    open_small_state();
    chat_snapshot_size(if quick { &[1, 1_000] } else { &[1, 10_000] });
}

/// A replica with one filler canister holding `size` bytes of `kind`, checkpointed.
struct Filled {
    dir: tempfile::TempDir,
    replica: Replica,
    canister: Principal,
    kind: Kind,
    pages: u64,
}

fn me() -> Principal {
    Principal::anonymous()
}

impl Filled {
    fn new(kind: Kind, size: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut replica = Replica::open(dir.path()).unwrap();
        let canister = create(&mut replica);
        install(&mut replica, canister);
        let pages = size / PAGE;
        let method = match kind {
            Kind::Stable => "fill",
            Kind::Heap => "grow_heap",
        };
        replica
            .update(me(), canister, method, &pages.to_le_bytes())
            .unwrap();
        replica.checkpoint().unwrap();
        Self {
            dir,
            replica,
            canister,
            kind,
            pages,
        }
    }

    /// Rewrites 1 % of the pages with contents they never had.
    fn touch(&mut self, salt: u64) {
        let touched = (self.pages / 100).max(1);
        let method = match self.kind {
            Kind::Stable => "touch",
            Kind::Heap => "touch_heap",
        };
        let arg = [touched.to_le_bytes(), salt.to_le_bytes()].concat();
        self.replica
            .update(me(), self.canister, method, &arg)
            .unwrap();
    }

    fn take(&mut self, replace: Option<Vec<u8>>) -> Vec<u8> {
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id: self.canister,
            replace_snapshot: replace,
            uninstall_code: None,
            sender_canister_version: None,
        };
        manage::<ic::Snapshot>(&mut self.replica, "take_canister_snapshot", args).id
    }

    fn load(&mut self, id: &[u8]) {
        let args = ic::LoadCanisterSnapshotArgs {
            canister_id: self.canister,
            snapshot_id: id.to_vec(),
            sender_canister_version: None,
        };
        manage::<()>(&mut self.replica, "load_canister_snapshot", args);
        self.replica
            .query(me(), self.canister, "probe", &[])
            .unwrap();
    }

    fn delete(&mut self, id: Vec<u8>) {
        let args = ic::DeleteCanisterSnapshotArgs {
            canister_id: self.canister,
            snapshot_id: id,
        };
        manage::<()>(&mut self.replica, "delete_canister_snapshot", args);
    }
}

fn bench(kind: Kind, size: u64) {
    let memcpy = figures::memcpy(size as usize);
    let mut state = Filled::new(kind, size);
    let (mut takes, mut loads, mut replaces) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..figures::RUNS as u64 {
        let started = Instant::now();
        let id = state.take(None);
        takes.push(started.elapsed());
        state.touch(run + 1);
        let started = Instant::now();
        state.load(&id);
        loads.push(started.elapsed());
        let started = Instant::now();
        let replaced = state.take(Some(id));
        replaces.push(started.elapsed());
        state.delete(replaced);
    }
    let group = format!("snapshot, {} MiB of {}", size / MIB, kind.name());
    let baseline = Some(("memcpy", memcpy));
    let (take, load, replace) = (
        Spread::of_ms(&takes),
        Spread::of_ms(&loads),
        Spread::of_ms(&replaces),
    );
    let take_target = match size {
        s if s <= 10 * MIB => at_most(take, 5.0, "≤ 5 ms"),
        s if s >= 1024 * MIB => at_most(take, 100f64.min(memcpy.median), "≤ 0.1 s and ≤ 1× memcpy"),
        _ => None,
    };
    let load_target = (size >= 1024 * MIB)
        .then(|| at_most(load, 100f64.min(memcpy.median), "≤ 0.1 s and ≤ 1× memcpy"))
        .flatten();
    report(&group, "take", "ms", take, baseline, take_target);
    report(
        &group,
        "load (1 % rewritten) + first call",
        "ms",
        load,
        baseline,
        load_target,
    );
    report(&group, "replace", "ms", replace, baseline, None);
    disk(&mut state, size, &group);
    if size >= 1024 * MIB {
        peak_memory(&mut state, size, &group);
    }
}

/// Bytes on disk a second snapshot adds: of unchanged state, and after 1 % changed.
fn disk(state: &mut Filled, size: u64, group: &str) {
    let first = state.take(None);
    let before = figures::disk_bytes(state.dir.path());
    let second = state.take(None);
    let unchanged = figures::disk_bytes(state.dir.path()) - before;
    state.touch(1000);
    let before = figures::disk_bytes(state.dir.path());
    let third = state.take(None);
    let changed = figures::disk_bytes(state.dir.path()) - before;
    let percent = |bytes: u64| Spread::one(bytes as f64 * 100.0 / size as f64);
    let unchanged = percent(unchanged);
    report(
        group,
        "disk added by a second snapshot, unchanged state",
        "% of state",
        unchanged,
        None,
        at_most(unchanged, 1.0, "≤ 1 %"),
    );
    report(
        group,
        "disk added by a snapshot after 1 % of pages changed",
        "% of state",
        percent(changed),
        None,
        None,
    );
    for id in [first, second, third] {
        state.delete(id);
    }
}

/// The most memory a take and a load need above the state itself, against what a second
/// full copy of the state needs, measured the same way in the same run: a figure that could
/// not see such a copy would show here as a copy of ~0 MiB.
fn peak_memory(state: &mut Filled, size: u64, group: &str) {
    let mib = |bytes: i64| bytes as f64 / MIB as f64;
    let copy = figures::peak_above(|| {
        let copy = vec![1u8; size as usize];
        std::hint::black_box(&copy);
    });
    let mut id = None;
    let take_load = figures::peak_above(|| {
        let taken = state.take(None);
        state.touch(2000);
        state.load(&taken);
        id = Some(taken);
    });
    if let Some(id) = id {
        state.delete(id);
    }
    let (Some(copy), Some(take_load)) = (copy, take_load) else {
        println!(
            "{group}: peak memory not measured: the kernel did not reset the peak (/proc/self/clear_refs)"
        );
        return;
    };
    let copy = Spread::one(mib(copy));
    report(
        group,
        "peak memory of a second full copy (the method's check)",
        "MiB",
        copy,
        None,
        None,
    );
    let above = Spread::one(mib(take_load));
    report(
        group,
        "peak memory above the state's, take + load",
        "MiB",
        above,
        Some(("a second full copy", copy)),
        at_most(above, copy.median / 4.0, "≤ ¼ of a second copy"),
    );
}

/// Opening a state directory with one small canister, and the first call after it.
fn open_small_state() {
    let dir = {
        let state = Filled::new(Kind::Stable, MIB);
        let Filled { dir, replica, .. } = state;
        drop(replica);
        dir
    };
    let mut opens = Vec::new();
    for _ in 0..figures::RUNS {
        let started = Instant::now();
        let mut replica = Replica::open(dir.path()).unwrap();
        let canister = replica.canister_ids()[0];
        replica.query(me(), canister, "probe", &[]).unwrap();
        opens.push(started.elapsed());
    }
    let open = Spread::of_ms(&opens);
    report(
        "open",
        "open a small state + first call",
        "ms",
        open,
        None,
        None,
    );
}

/// `total_size` of a snapshot of the chat at each of `counts` messages: for a small chat, its
/// module, heap and the memory manager's buckets rather than its messages.
fn chat_snapshot_size(counts: &[u64]) {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::chat_wasm(&target).unwrap_or_else(|e| panic!("{e}"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::open(dir.path()).unwrap();
    let chat = create(&mut replica);
    install_module(&mut replica, chat, wasm);
    let mut len = 0;
    for &count in counts {
        while len < count {
            let message = Encode!(&format!("message {len}")).unwrap();
            replica.update(me(), chat, "append", &message).unwrap();
            len += 1;
        }
        let args = ic::TakeCanisterSnapshotArgs {
            canister_id: chat,
            replace_snapshot: None,
            uninstall_code: None,
            sender_canister_version: None,
        };
        let snapshot = manage::<ic::Snapshot>(&mut replica, "take_canister_snapshot", args);
        let name = match count {
            1 => "1 message".to_owned(),
            n => format!("{} messages", thousands(n)),
        };
        report(
            "chat canister, snapshot size against message count",
            &name,
            "MiB",
            Spread::one(snapshot.total_size as f64 / MIB as f64),
            None,
            None,
        );
        let args = ic::DeleteCanisterSnapshotArgs {
            canister_id: chat,
            snapshot_id: snapshot.id,
        };
        manage::<()>(&mut replica, "delete_canister_snapshot", args);
    }
}

/// `n` with commas between groups of three digits: 10,000.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn install(replica: &mut Replica, canister: Principal) {
    let wasm = wat::parse_file(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/filler.wat")).unwrap();
    install_module(replica, canister, wasm);
}

fn install_module(replica: &mut Replica, canister: Principal, wasm: Vec<u8>) {
    let args = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: canister,
        wasm_module: wasm,
        arg: vec![],
        sender_canister_version: None,
    };
    manage::<()>(replica, "install_code", args);
}

fn create(replica: &mut Replica) -> Principal {
    let args = ic::ProvisionalCreateCanisterWithCyclesArgs {
        amount: None,
        settings: None,
        specified_id: None,
        sender_canister_version: None,
    };
    manage::<ic::CanisterIdRecord>(replica, "provisional_create_canister_with_cycles", args)
        .canister_id
}

fn manage<R: candid::CandidType + serde::de::DeserializeOwned>(
    replica: &mut Replica,
    method: &str,
    arg: impl candid::CandidType,
) -> R {
    let reply = replica
        .update(
            me(),
            Principal::management_canister(),
            method,
            &Encode!(&arg).unwrap(),
        )
        .unwrap();
    Decode!(&reply, R).unwrap()
}
