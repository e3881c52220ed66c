//! Crash safety: a replica process killed at every write point of a checkpoint, the journal
//! and an execution (the crash points of `src/fault.rs`, each pass in turn) and at random
//! instants loses nothing it acknowledged. Reopened, the state equals the one after the last
//! acknowledged operation — or after the one in flight, which may have been recorded — every
//! snapshot loads to the chat it was taken of, with the module byte for byte, and no state
//! is corrupt. The workload includes calls between canisters: appends relayed by another
//! canister, and snapshots taken by a backup agent canister through the management canister
//! (a kill in the middle leaves the calls in flight, which go on when the state is reopened).
//! Recovery itself is crashed too (in its replay and its checkpoint) before the state is
//! reopened for the check. Beyond the chat and its snapshots, a reopened state whose chat
//! runs must have the same canister statuses (version, settings, controllers, module hash,
//! memory sizes), logs and chunk store as an uninterrupted run after as many operations.
//! The same crash points are also power failures: the power-loss layer
//! (`replica::store::power_loss`) writes what each pattern of lost writes would leave, and
//! each of those states must hold everything the child acknowledged after syncing it.
//! By default every point is tried on its first three passes and every third
//! after; `CRASH_EVERY_PASS=1` tries every pass. `CRASH_KILLS=N` sets the number of random
//! kills (default 20). The last long run's figures are in docs/robustness.md.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::relay::{Forwarded, Outcome};
use crate::common::{Local, Random, chat_wasm, relay_wasm, transfer, user, wat};
use crate::dirty_pages::{HEAP, SCRATCH, words};
use candid::{Decode, Encode};
use ic_management_canister_types as ic;
use replica::store::power_loss;
use replica::{Principal, Replica, fault};

/// Set in the child process, naming the state directory it works in.
const CHILD: &str = "CRASH_TEST_STATE";
/// How many rounds of the workload the child runs.
const ROUNDS: &str = "CRASH_TEST_ROUNDS";
const CHILD_TEST: &str = "crash::child";
/// Set when the child only opens the state (recovering it) and closes it (a checkpoint).
const REOPEN_ONLY: &str = "CRASH_TEST_REOPEN_ONLY";
/// Where recoveries are crashed in turn before a state is verified: during the replay, and
/// during the checkpoint that closing the recovered state makes.
const RECOVERY_POINTS: [&str; 2] = ["execute:done", "commit:pack-written"];
/// Set when the child makes each operation durable (`Replica::sync`) before acknowledging it.
const SYNC_ACKS: &str = "CRASH_TEST_SYNC_ACKS";

/// The crash points the workload passes.
const POINTS: [&str; 9] = [
    "journal:before-append",
    "journal:appended",
    "execute:done",
    "commit:start",
    "pack:written-not-renamed",
    "commit:pack-written",
    "file:written-not-renamed",
    "commit:manifest-written",
    "commit:journal-cleared",
];

/// One step of the workload; the child acknowledges each once it has returned.
#[derive(Clone, Debug)]
enum Op {
    Append(String),
    /// An append the relay canister makes: a call to the chat.
    Relayed(String),
    /// Stop, take a snapshot, start, all by the agent canister's calls to the management canister.
    AgentSnapshot,
    /// Stop, take a snapshot, start.
    Snapshot,
    /// `remove_spam`, which empties a chat without spam.
    Break,
    /// Stop, load the n-th snapshot taken (or uploaded), start.
    Restore(usize),
    Delete(usize),
    /// Download the n-th snapshot and upload it as a new one.
    Copy(usize),
    /// Fill bytes of the heap canister's heap (offset, length, value), pages that only the
    /// dirty-page tracker tells the replica were written.
    HeapFill(u32, u32, u8),
}

/// Rounds of appends, snapshots, losses, restores, deletes and copies.
fn workload(rounds: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for round in 0..rounds {
        let snapshot = |k: usize| round * 3 + k;
        for i in 0..3 {
            let message = format!("round {round} message {i}");
            ops.push(if i == 1 {
                Op::Relayed(message)
            } else {
                Op::Append(message)
            });
        }
        ops.push(Op::Snapshot);
        ops.push(Op::Append(format!("round {round} after the snapshot")));
        ops.push(Op::Break);
        ops.push(Op::Restore(snapshot(0)));
        ops.push(Op::Copy(snapshot(0)));
        ops.push(Op::Relayed(format!("round {round} last")));
        ops.push(Op::HeapFill(
            1_000 + 7_000 * round as u32,
            70_000,
            round as u8 + 1,
        ));
        ops.push(Op::AgentSnapshot);
        ops.push(Op::Delete(snapshot(0)));
        ops.push(Op::Restore(snapshot(1)));
        ops.push(Op::Delete(snapshot(1)));
    }
    ops
}

/// What the state should be after some operations: the chat, and each snapshot ever made
/// (in order) with the chat it holds, `None` once deleted.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    chat: Vec<String>,
    snapshots: Vec<Option<Vec<String>>>,
    /// The heap canister's heap after its argument scratch.
    heap: Vec<u8>,
}

/// How much of the heap canister's heap is checked: its first two pages.
const HEAP_CHECKED: usize = 2 * 65_536;

impl Model {
    fn after(ops: &[Op]) -> Self {
        let mut model = Self {
            chat: Vec::new(),
            snapshots: Vec::new(),
            heap: vec![0; HEAP_CHECKED - SCRATCH],
        };
        for op in ops {
            match op {
                Op::Append(m) | Op::Relayed(m) => model.chat.push(m.clone()),
                Op::Snapshot | Op::AgentSnapshot => model.snapshots.push(Some(model.chat.clone())),
                Op::Break => model.chat.clear(),
                Op::Restore(n) => model.chat = model.snapshots[*n].clone().expect("live"),
                Op::Delete(n) => model.snapshots[*n] = None,
                Op::Copy(n) => model.snapshots.push(model.snapshots[*n].clone()),
                Op::HeapFill(offset, len, byte) => {
                    let start = *offset as usize - SCRATCH;
                    model.heap[start..start + *len as usize].fill(*byte);
                }
            }
        }
        model
    }
}

fn chat_id() -> Principal {
    replica::ids::canister_id(0)
}

/// The relay, which relays appends and is the chat's backup agent.
fn relay_id() -> Principal {
    replica::ids::canister_id(1)
}

/// The canister whose state is its heap (`dirty_pages::HEAP`).
fn heap_id() -> Principal {
    replica::ids::canister_id(2)
}

/// The id of the n-th snapshot made on the chat.
fn snapshot_id(n: usize) -> Vec<u8> {
    replica::ids::snapshot_id(n as u64, &chat_id())
}

#[test]
fn child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    if std::env::var_os(REOPEN_ONLY).is_some() {
        drop(Replica::open(Path::new(&dir)).unwrap());
        return;
    }
    let rounds: usize = std::env::var(ROUNDS).unwrap().parse().unwrap();
    let mut local = Local {
        replica: Replica::open(Path::new(&dir)).unwrap(),
        dir: tempfile::tempdir().unwrap(),
    };
    let chat = local.deploy(chat_wasm());
    assert_eq!(chat, chat_id());
    let relay = local.deploy(relay_wasm());
    assert_eq!(relay, relay_id());
    assert_eq!(local.deploy(wat(HEAP)), heap_id());
    local.update_settings(
        chat,
        ic::CanisterSettings {
            controllers: Some(vec![user(), relay]),
            ..Default::default()
        },
    );
    let sync_acks = std::env::var_os(SYNC_ACKS).is_some();
    let acknowledge = |local: &mut Local, ack: String| {
        if sync_acks {
            local.replica.sync().unwrap();
        }
        println!("{ack}");
    };
    acknowledge(&mut local, "deployed".into());
    for (n, op) in workload(rounds).iter().enumerate() {
        run(&mut local, chat, op);
        acknowledge(&mut local, format!("ack {n}"));
    }
    drop(local);
    println!("done");
}

fn run(local: &mut Local, chat: Principal, op: &Op) {
    match op {
        Op::Append(message) => local.update::<()>(chat, "append", (message,)).unwrap(),
        Op::Relayed(message) => {
            let arg = Encode!(message).unwrap();
            let forwarded: Forwarded = local
                .update(relay_id(), "forward", (chat, "append", arg, 0u128))
                .unwrap();
            assert!(
                matches!(forwarded.outcome, Outcome::Reply(_)),
                "{forwarded:?}"
            );
        }
        Op::AgentSnapshot => drop(
            local
                .update::<Vec<u8>>(relay_id(), "backup", (chat,))
                .unwrap(),
        ),
        Op::Break => drop(local.update::<u64>(chat, "remove_spam", ()).unwrap()),
        Op::Snapshot => {
            local.stop(chat);
            local.take_snapshot(chat, None).unwrap();
            local.start(chat);
        }
        Op::Restore(n) => {
            local.stop(chat);
            local.load_snapshot(chat, snapshot_id(*n)).unwrap();
            local.start(chat);
        }
        Op::Delete(n) => {
            let args = ic::DeleteCanisterSnapshotArgs {
                canister_id: chat,
                snapshot_id: snapshot_id(*n),
            };
            local
                .management::<()>(user(), "delete_canister_snapshot", args)
                .unwrap();
        }
        Op::Copy(n) => drop(transfer::copy(local, chat, &snapshot_id(*n)).unwrap()),
        Op::HeapFill(offset, len, byte) => {
            let arg = words([*offset, *len, (*byte).into()]);
            local
                .replica
                .update(user(), heap_id(), "fill", &arg)
                .unwrap();
        }
    }
}

/// What the workload leaves beyond the chat's messages and snapshot list: each canister's
/// status (running or not, version, settings and controllers, module hash, memory sizes —
/// chunk store and snapshots included), its log's contents, certified data and global
/// timer (which the heap canister's fills set), and the chat's stored chunks.
/// The query statistics, which observing changes, and log times are left out.
fn fingerprint(local: &mut Local) -> Vec<String> {
    let mut seen = Vec::new();
    for canister in [chat_id(), relay_id(), heap_id()] {
        let mut status = local.status(canister);
        let zero = candid::Nat::from(0u8);
        status.query_stats = ic::QueryStats {
            num_calls_total: zero.clone(),
            num_instructions_total: zero.clone(),
            request_payload_bytes_total: zero.clone(),
            response_payload_bytes_total: zero,
        };
        seen.push(format!("{status:?}"));
        let args = ic::FetchCanisterLogsArgs {
            canister_id: canister,
            filter: None,
        };
        let logs = local
            .replica
            .query(
                user(),
                Principal::management_canister(),
                "fetch_canister_logs",
                &Encode!(&args).unwrap(),
            )
            .unwrap();
        let logs = Decode!(&logs, ic::FetchCanisterLogsResult).unwrap();
        let contents: Vec<String> = logs
            .canister_log_records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.content).into_owned())
            .collect();
        seen.push(format!("{canister} logs {contents:?}"));
    }
    for facts in local.replica.facts() {
        seen.push(format!(
            "{} certified {:?}, timer {}",
            facts.id, facts.certified_data, facts.global_timer
        ));
    }
    let chunks: Vec<ic::ChunkHash> = local
        .management(
            user(),
            "stored_chunks",
            ic::CanisterIdRecord {
                canister_id: chat_id(),
            },
        )
        .unwrap();
    seen.push(format!("chunks {chunks:?}"));
    seen
}

/// The fingerprint after each prefix of the workload of `rounds`, as a run without crashes
/// leaves it (index n: after n operations).
fn fingerprints(rounds: usize) -> Vec<Vec<String>> {
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    let relay = local.deploy(relay_wasm());
    local.deploy(wat(HEAP));
    local.update_settings(
        chat,
        ic::CanisterSettings {
            controllers: Some(vec![user(), relay]),
            ..Default::default()
        },
    );
    let mut prints = vec![fingerprint(&mut local)];
    for op in workload(rounds) {
        run(&mut local, chat, &op);
        prints.push(fingerprint(&mut local));
    }
    prints
}

/// What a child printed before it died: whether it deployed, and how many operations it
/// acknowledged.
struct Acknowledged {
    deployed: bool,
    ops: usize,
    finished: bool,
}

/// Reads a child's acknowledgements to the end, counting the operations in `progress` as
/// they come.
fn read_acks(stdout: impl std::io::Read, progress: &AtomicUsize) -> Acknowledged {
    let mut acked = Acknowledged {
        deployed: false,
        ops: 0,
        finished: false,
    };
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        match line.as_str() {
            "deployed" => acked.deployed = true,
            "done" => acked.finished = true,
            l if l.starts_with("ack ") => {
                acked.ops += 1;
                progress.store(acked.ops, Ordering::SeqCst);
            }
            _ => {}
        }
    }
    acked
}

fn child_command(dir: &Path, rounds: usize) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            CHILD_TEST,
            "--nocapture",
            "--test-threads",
            "1",
            "-q",
        ])
        .env(CHILD, dir)
        .env(ROUNDS, rounds.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Reopens the state a child left and checks it against the workload's models.
fn verify(dir: &Path, rounds: usize, acked: &Acknowledged, what: &str, expected: &[Vec<String>]) {
    let mut local = Local {
        replica: Replica::open(dir).unwrap_or_else(|e| panic!("{what}: the state is corrupt: {e}")),
        dir: tempfile::tempdir().unwrap(),
    };
    if !acked.deployed {
        return;
    }
    let chat = chat_id();
    // An operation cut short between its calls may leave the chat stopped (the xtask starts
    // it again); stopping is no loss, but its version and status are not a whole
    // operation's, so only a running chat's fingerprint is compared.
    let stopped = local.status(chat).status == ic::CanisterStatusType::Stopped;
    let found = (!stopped).then(|| fingerprint(&mut local));
    if stopped {
        local.start(chat);
    }
    let ops = workload(rounds);
    let candidates: Vec<(usize, Model)> = [acked.ops, acked.ops + 1]
        .into_iter()
        .filter(|n| *n <= ops.len())
        .map(|n| (n, Model::after(&ops[..n])))
        .collect();
    let chat_now: Vec<String> = local
        .query(chat, "dump", ())
        .unwrap_or_else(|e| panic!("{what}: the chat does not answer: {e}"));
    let listed: Vec<Vec<u8>> = local
        .list_snapshots(chat)
        .into_iter()
        .map(|s| s.id)
        .collect();
    let (done, model) = candidates
        .iter()
        .find(|(_, m)| {
            let ids: Vec<Vec<u8>> = m
                .snapshots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| snapshot_id(n))
                .collect();
            m.chat == chat_now && ids == listed
        })
        .unwrap_or_else(|| {
            panic!(
                "{what}: after {} acknowledged operations the state matches neither model: chat {chat_now:?}, snapshots {listed:?}",
                acked.ops
            )
        });
    let heap = local
        .replica
        .query(
            user(),
            heap_id(),
            "read",
            &words([SCRATCH as u32, (HEAP_CHECKED - SCRATCH) as u32, 0]),
        )
        .unwrap();
    assert!(
        candidates.iter().any(|(_, m)| m.heap == heap),
        "{what}: the heap canister's heap is neither model's"
    );
    // Of the operations done, the model may not tell which (a fill of the heap canister's
    // leaves the chat as it was): the canisters must be as after one of them.
    if let Some(found) = found
        && !candidates.iter().any(|(n, _)| expected[*n] == found)
    {
        // A copy cut short leaves its upload's snapshot: sizes differ from a whole operation's.
        assert!(
            matches!(ops.get(acked.ops), Some(Op::Copy(_))),
            "{what}: after {done} operations the canisters differ from an uninterrupted run's:\n{found:#?}\nexpected\n{:#?}",
            expected[*done]
        );
    }
    // A copy cut short leaves an upload with only some of its data, as on the IC.
    let partial = (*done > acked.ops && matches!(ops[acked.ops], Op::Copy(_)))
        .then(|| model.snapshots.len() - 1);
    for (n, recorded) in model.snapshots.iter().enumerate() {
        let Some(recorded) = recorded else { continue };
        if Some(n) == partial {
            continue;
        }
        let id = snapshot_id(n);
        let metadata = transfer::read_metadata(&mut local, chat, &id);
        let module = transfer::download(
            &mut local,
            chat,
            &id,
            metadata.wasm_module_size,
            |offset, size| ic::SnapshotDataKind::WasmModule { offset, size },
        );
        assert_eq!(module, chat_wasm(), "{what}: snapshot {n}'s module");
        local.stop(chat);
        local.load_snapshot(chat, id).unwrap();
        local.start(chat);
        let loaded: Vec<String> = local.query(chat, "dump", ()).unwrap();
        assert_eq!(
            &loaded, recorded,
            "{what}: snapshot {n} loads to another chat"
        );
    }
}

/// The passes of a crash point tried: the first three and every third after, or every one
/// with `CRASH_EVERY_PASS`.
fn passes() -> impl Iterator<Item = usize> {
    let every = std::env::var_os("CRASH_EVERY_PASS").is_some();
    (1..).filter(move |p| every || *p <= 3 || p % 3 == 0)
}

#[test]
fn a_crash_at_any_write_point_loses_nothing_acknowledged() {
    let expected = fingerprints(1);
    let mut crashes = 0;
    for point in POINTS {
        for pass in passes() {
            let dir = tempfile::tempdir().unwrap();
            let mut child = child_command(dir.path(), 1)
                .env(fault::CRASH_AT, format!("{point}:{pass}"))
                .spawn()
                .unwrap();
            let acked = read_acks(child.stdout.take().unwrap(), &AtomicUsize::new(0));
            let status = child.wait().unwrap();
            if status.success() {
                assert!(acked.finished);
                assert!(pass > 1, "the workload never passes {point}");
                break;
            }
            assert!(
                !acked.finished,
                "the child finished yet did not exit cleanly"
            );
            crashes += 1;
            if pass <= 3 {
                crash_recoveries(dir.path());
            }
            verify(
                dir.path(),
                1,
                &acked,
                &format!("crash at {point}, pass {pass}"),
                &expected,
            );
        }
    }
    println!(
        "{crashes} crashes at {} points, every state intact",
        POINTS.len()
    );
    assert!(crashes >= POINTS.len() * 2);
}

#[test]
fn a_power_loss_at_any_write_point_loses_nothing_synced() {
    let expected = fingerprints(1);
    let mut losses = 0;
    for point in POINTS {
        for pass in passes() {
            let (dir, images) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let mut child = child_command(dir.path(), 1)
                .env(fault::CRASH_AT, format!("{point}:{pass}"))
                .env(power_loss::POWER_LOSS, images.path())
                .env(SYNC_ACKS, "1")
                .spawn()
                .unwrap();
            let acked = read_acks(child.stdout.take().unwrap(), &AtomicUsize::new(0));
            if child.wait().unwrap().success() {
                assert!(pass > 1, "the workload never passes {point}");
                break;
            }
            for pattern in power_loss::PATTERNS {
                let what = format!("power loss at {point}, pass {pass}, {pattern}");
                verify(&images.path().join(pattern), 1, &acked, &what, &expected);
                losses += 1;
            }
        }
    }
    println!(
        "{losses} power losses ({} patterns at {} points), every synced state intact",
        power_loss::PATTERNS.len(),
        POINTS.len()
    );
    assert!(losses >= POINTS.len() * 2 * power_loss::PATTERNS.len());
}

/// Crashes the recovery of the state in `dir` at each of `RECOVERY_POINTS` in turn (a
/// recovery that does not pass one ends cleanly).
fn crash_recoveries(dir: &Path) {
    for point in RECOVERY_POINTS {
        child_command(dir, 1)
            .env(REOPEN_ONLY, "1")
            .env(fault::CRASH_AT, format!("{point}:1"))
            .status()
            .unwrap();
    }
}

#[test]
fn kills_at_random_instants_lose_nothing_acknowledged() {
    let kills: usize = std::env::var("CRASH_KILLS").map_or(20, |n| n.parse().unwrap());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut random = Random(seed);
    let rounds = 4;
    let expected = fingerprints(rounds);
    let total = workload(rounds).len() as u64;
    let mut acknowledged = 0;
    for kill in 0..kills {
        let dir = tempfile::tempdir().unwrap();
        let mut child = child_command(dir.path(), rounds).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let progress = Arc::new(AtomicUsize::new(0));
        let seen = progress.clone();
        let reader = std::thread::spawn(move || read_acks(stdout, &seen));
        // Spread the kills over the whole workload: wait for a random number of
        // acknowledgements, then a random few milliseconds more.
        let after = random.below(total + 1) as usize;
        while progress.load(Ordering::SeqCst) < after && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(random.below(20)));
        let _ = child.kill();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        acknowledged += acked.ops;
        verify(
            dir.path(),
            rounds,
            &acked,
            &format!("kill {kill} (seed {seed})"),
            &expected,
        );
    }
    println!("{kills} kills, {acknowledged} acknowledged operations, every state intact");
}
