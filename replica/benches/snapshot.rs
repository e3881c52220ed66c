//! Snapshot take and load times for canisters holding 10 MiB and 1 GiB of stable memory,
//! each against a memcpy of the same bytes in the same run. Between take and load, 1 % of
//! the pages are rewritten, so the load has something to undo. `cargo bench -p replica`.

use std::time::{Duration, Instant};

use candid::{Decode, Encode, Principal};
use ic_management_canister_types as ic;
use replica::Replica;

const RUNS: usize = 5;
const MIB: u64 = 1 << 20;

fn main() {
    let sizes: &[u64] = if std::env::args().any(|a| a == "--quick") {
        &[10 * MIB]
    } else {
        &[10 * MIB, 1024 * MIB]
    };
    println!(
        "| state | take (median, min–max) | take / memcpy | load + first call | load / memcpy | memcpy |"
    );
    println!("|---|---|---|---|---|---|");
    for &size in sizes {
        bench(size);
    }
    open_small_state();
}

/// Opening a state directory with one small canister, and the first call after it.
fn open_small_state() {
    let dir = tempfile::tempdir().unwrap();
    let me = Principal::anonymous();
    let canister = {
        let mut replica = Replica::open(dir.path()).unwrap();
        let canister = create(&mut replica, me);
        install(&mut replica, me, canister);
        replica
            .update(me, canister, "fill", &16u64.to_le_bytes())
            .unwrap();
        canister
    };
    let mut opens = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut replica = Replica::open(dir.path()).unwrap();
        opens.push(started.elapsed());
        let started = Instant::now();
        replica.query(me, canister, "probe", &[]).unwrap();
        firsts.push(started.elapsed());
    }
    let (open, first) = (median(&mut opens), median(&mut firsts));
    println!();
    println!("| small state (1 canister, 1 MiB stable) | open | first call after open |");
    println!("|---|---|---|");
    println!(
        "| median (min–max) | {} ({}–{}) | {} ({}–{}) |",
        ms(open),
        ms(opens[0]),
        ms(opens[RUNS - 1]),
        ms(first),
        ms(firsts[0]),
        ms(firsts[RUNS - 1])
    );
}

fn install(replica: &mut Replica, me: Principal, canister: Principal) {
    let wasm = wat::parse_file(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/filler.wat")).unwrap();
    let args = ic::InstallCodeArgs {
        mode: ic::CanisterInstallMode::Install,
        canister_id: canister,
        wasm_module: wasm,
        arg: vec![],
        sender_canister_version: None,
    };
    manage::<()>(replica, me, "install_code", args);
}

fn bench(size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::open(dir.path()).unwrap();
    let me = Principal::anonymous();
    let canister = create(&mut replica, me);
    install(&mut replica, me, canister);
    replica
        .update(me, canister, "fill", &(size / 65536).to_le_bytes())
        .unwrap();

    let mut takes = Vec::new();
    let mut loads = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let snapshot: ic::Snapshot = manage(
            &mut replica,
            me,
            "take_canister_snapshot",
            ic::TakeCanisterSnapshotArgs {
                canister_id: canister,
                replace_snapshot: None,
                uninstall_code: None,
                sender_canister_version: None,
            },
        );
        takes.push(started.elapsed());
        let touched = (size / 65536 / 100).max(1);
        let salt = takes.len() as u64;
        let arg: Vec<u8> = [touched.to_le_bytes(), salt.to_le_bytes()].concat();
        replica.update(me, canister, "touch", &arg).unwrap();
        let started = Instant::now();
        manage::<()>(
            &mut replica,
            me,
            "load_canister_snapshot",
            ic::LoadCanisterSnapshotArgs {
                canister_id: canister,
                snapshot_id: snapshot.id.clone(),
                sender_canister_version: None,
            },
        );
        replica.query(me, canister, "probe", &[]).unwrap();
        loads.push(started.elapsed());
        manage::<()>(
            &mut replica,
            me,
            "delete_canister_snapshot",
            ic::DeleteCanisterSnapshotArgs {
                canister_id: canister,
                snapshot_id: snapshot.id,
            },
        );
    }
    let memcpy = memcpy(size as usize);
    let (take, load) = (median(&mut takes), median(&mut loads));
    println!(
        "| {} MiB | {} ({}–{}) | {:.2}× | {} ({}–{}) | {:.2}× | {} |",
        size / MIB,
        ms(take),
        ms(takes[0]),
        ms(takes[RUNS - 1]),
        take.as_secs_f64() / memcpy.as_secs_f64(),
        ms(load),
        ms(loads[0]),
        ms(loads[RUNS - 1]),
        load.as_secs_f64() / memcpy.as_secs_f64(),
        ms(memcpy),
    );
}

fn memcpy(size: usize) -> Duration {
    let source = vec![7u8; size];
    let mut target = vec![0u8; size];
    let mut runs: Vec<_> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            target.copy_from_slice(std::hint::black_box(&source));
            std::hint::black_box(&target);
            started.elapsed()
        })
        .collect();
    median(&mut runs)
}

fn median(runs: &mut [Duration]) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn create(replica: &mut Replica, me: Principal) -> Principal {
    manage::<ic::CanisterIdRecord>(
        replica,
        me,
        "provisional_create_canister_with_cycles",
        ic::ProvisionalCreateCanisterWithCyclesArgs {
            amount: None,
            settings: None,
            specified_id: None,
            sender_canister_version: None,
        },
    )
    .canister_id
}

fn manage<R: candid::CandidType + serde::de::DeserializeOwned>(
    replica: &mut Replica,
    me: Principal,
    method: &str,
    arg: impl candid::CandidType,
) -> R {
    let reply = replica
        .update(
            me,
            Principal::management_canister(),
            method,
            &Encode!(&arg).unwrap(),
        )
        .unwrap();
    Decode!(&reply, R).unwrap()
}
