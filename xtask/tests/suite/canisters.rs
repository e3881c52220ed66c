//! Any canister, not only the chat: `--canister NAME|ID` on the embedded backend, with the
//! relay and the notes (canisters of their own state and interface) deployed beside the
//! chat. Between commands the tests act as the canisters' users, calling them directly.

use candid::{Decode, Encode, Principal};
use replica::Replica;

use crate::common::User;

fn wasm(name: &str) -> String {
    let target = project_tools::target_dir_of_tests(env!("CARGO_TARGET_TMPDIR"));
    let path = project_tools::canister_wasm(&target, name).unwrap_or_else(|e| panic!("{e}"));
    path.display().to_string()
}

fn relay_wasm() -> String {
    wasm("relay")
}

/// Calls `method` of `canister` on the embedded replica, as its users would.
fn call(user: &User, canister: Principal, method: &str, arg: Vec<u8>, query: bool) -> Vec<u8> {
    let mut replica = Replica::open(&user.state.path().join("embedded")).unwrap();
    let me = Principal::anonymous();
    let reply = if query {
        replica.query(me, canister, method, &arg)
    } else {
        replica.update(me, canister, method, &arg)
    };
    reply.unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Deploys the notes canister under the name `notes`; its id.
fn deploy_notes(user: &User) -> Principal {
    let deployed = user.json(&["deploy", "--canister", "notes", "--wasm", &wasm("notes")]);
    Principal::from_text(deployed["canister"].as_str().unwrap()).unwrap()
}

fn notes_count(user: &User, notes: Principal) -> u64 {
    Decode!(&call(user, notes, "count", Encode!().unwrap(), true), u64).unwrap()
}

/// The relay's counter, read and bumped on the embedded replica between commands.
fn counter(user: &User, relay: Principal, bumps: u32) -> u64 {
    let mut replica = Replica::open(&user.state.path().join("embedded")).unwrap();
    for _ in 0..bumps {
        replica
            .update(Principal::anonymous(), relay, "count", &Encode!().unwrap())
            .unwrap();
    }
    let reply = replica
        .query(
            Principal::anonymous(),
            relay,
            "counter",
            &Encode!().unwrap(),
        )
        .unwrap();
    Decode!(&reply, u64).unwrap()
}

fn replica_hex(id: Principal) -> String {
    id.as_slice().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_canister_of_its_own_is_snapshot_and_restored_by_name_and_by_id() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    let wasm = relay_wasm();
    let deployed = user.json(&["deploy", "--canister", "relay", "--wasm", &wasm]);
    let id = deployed["canister"].as_str().unwrap().to_owned();
    let relay = Principal::from_text(&id).unwrap();
    assert_eq!(counter(&user, relay, 2), 2);

    let taken = user.json(&["snapshot", "--canister", "relay"]);
    assert!(taken["messages"].is_null(), "no chat to record: {taken}");
    let snapshot = taken["snapshot_id"].as_str().unwrap().to_owned();
    assert!(
        snapshot.ends_with(&replica_hex(relay)),
        "a snapshot id names its canister: {snapshot}"
    );
    assert_eq!(counter(&user, relay, 3), 5);

    let restored = user.json(&["restore", "--canister", &id]);
    assert_eq!(restored["snapshot_id"], snapshot.as_str());
    assert_eq!(
        counter(&user, relay, 0),
        2,
        "the restore brings the count back"
    );

    let listed = user.json(&["list", "--canister", "relay"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1);
    let chats = user.json(&["list"]);
    assert_eq!(
        chats["snapshots"].as_array().unwrap().len(),
        0,
        "the chat's snapshots are its own"
    );
    let status = user.json(&["status", "--canister", "relay"]);
    assert_eq!(status["canister"], id.as_str());
    assert_eq!(status["status"], "running");
    let chat = user.json(&["status"]);
    assert_ne!(chat["canister"], id.as_str());
    assert_ne!(chat["module_hash"], status["module_hash"]);
}

#[test]
fn a_canister_kept_on_the_heap_is_checked_by_its_own_query_through_every_command() {
    let user = User::new();
    user.ok(&["start"]);
    let notes = deploy_notes(&user);
    for note in ["first", "second"] {
        call(&user, notes, "add", Encode!(&note).unwrap(), false);
    }
    // An upgrade goes through pre_upgrade and post_upgrade and keeps the notes.
    deploy_notes(&user);
    assert_eq!(notes_count(&user, notes), 2);

    let taken = user.json(&["snapshot", "--canister", "notes", "--check", "count"]);
    assert_eq!(taken["check"], "count ()");
    let id = taken["snapshot_id"].as_str().unwrap().to_owned();
    let status = user.json(&["status", "--canister", "notes"]);
    assert_eq!(taken["module_hash"], status["module_hash"]);

    call(&user, notes, "clear", Encode!().unwrap(), false);
    let differs = user.fails(3, &["verify", "--canister", "notes", &id]);
    assert!(
        differs.contains("`count ()` now answers (0 : nat64), and answered (2 : nat64) then"),
        "{differs}"
    );
    user.ok(&["restore", "--canister", "notes"]);
    let verified = user.json(&["verify", "--canister", "notes"]);
    assert_eq!(verified["snapshot_id"], id.as_str());
    assert_eq!(verified["check"], "count ()");
    assert_eq!(verified["module_hash"], true);
    assert_eq!(
        verified["memories"], true,
        "the embedded backend compares every byte"
    );
    assert_eq!(notes_count(&user, notes), 2);

    // A change the check cannot see is still caught, in the heap.
    let blind = user.json(&["snapshot", "--canister", "notes", "--check", "get (100)"]);
    let blind = blind["snapshot_id"].as_str().unwrap().to_owned();
    call(&user, notes, "add", Encode!(&"third").unwrap(), false);
    let differs = user.fails(3, &["verify", "--canister", "notes", &blind]);
    assert!(
        differs.contains("notes does not match snapshot"),
        "{differs}"
    );
    assert!(differs.contains("its heap differs in"), "{differs}");
    user.ok(&["restore", "--canister", "notes", &blind]);
    assert_eq!(notes_count(&user, notes), 2);
    user.ok(&["delete", "--canister", "notes", &blind]);

    // The backup reads offline, typed by the canister's own interface: `get (1)` is sent
    // as a nat64 because notes.did says so.
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("notes");
    let dir = dir.to_str().unwrap();
    user.json(&["download", "--canister", "notes", "-o", dir]);
    let inspected = user.json(&["inspect", dir, "--query", "get (1)"]);
    assert_eq!(inspected["answer"]["reply"], "(opt \"second\")");
    assert_eq!(
        inspected["contents"]["module_hash"],
        status["module_hash"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x")
    );
    let sections = inspected["contents"]["metadata"].as_array().unwrap();
    let candid = sections
        .iter()
        .find(|s| s["name"] == "candid:service")
        .unwrap();
    assert!(
        candid["text"]
            .as_str()
            .unwrap()
            .contains("get : (nat64) -> (opt text) query")
    );
    assert!(inspected["messages"].is_null(), "not a chat: {inspected}");

    // guard rolls back a call that changes the check's answer.
    let guarded = user.json(&["guard", "--canister", "notes", "clear", "--check", "count"]);
    assert_eq!(guarded["restored"], true);
    assert_eq!(guarded["before"], "(2 : nat64)");
    assert_eq!(guarded["after"], "(0 : nat64)");
    assert_eq!(notes_count(&user, notes), 2);
    let error = user.fails(1, &["guard", "--canister", "notes", "clear"]);
    assert!(error.contains("with --check 'METHOD ARGS'"), "{error}");

    // An upload of the backup is verified by the check recorded for its origin.
    call(&user, notes, "clear", Encode!().unwrap(), false);
    let uploaded = user.json(&["upload", dir, "--canister", "notes"]);
    let copy = uploaded["snapshot_id"].as_str().unwrap();
    user.ok(&["restore", "--canister", "notes", copy]);
    assert_eq!(
        user.json(&["verify", "--canister", "notes"])["check"],
        "count ()"
    );
    assert_eq!(notes_count(&user, notes), 2);
}

#[test]
fn what_only_the_chat_has_and_bad_names_are_refused_clearly() {
    let user = User::new();
    user.ok(&["start"]);
    let wasm = relay_wasm();
    user.ok(&["deploy", "--canister", "relay", "--wasm", &wasm]);
    let error = user.fails(1, &["verify", "--canister", "relay"]);
    assert!(error.contains("nothing to verify against"), "{error}");
    let error = user.fails(2, &["snapshot", "--canister", "relay", "--check", "(0)"]);
    assert!(
        error.contains("does not start with a method name"),
        "{error}"
    );
    let error = user.fails(1, &["deploy", "--canister", "other"]);
    assert!(
        error.contains("cargo xtask deploy --canister other --wasm FILE"),
        "{error}"
    );
    let error = user.fails(1, &["snapshot", "--canister", "missing"]);
    assert!(
        error.contains("no canister `missing` on the embedded replica yet"),
        "{error}"
    );
    let error = user.fails(2, &["list", "--canister", "a b"]);
    assert!(error.contains("neither a canister name"), "{error}");
    let stranger = "aaaaa-aa";
    let error = user.fails(1, &["deploy", "--canister", stranger, "--wasm", &wasm]);
    assert!(error.contains("deploy by name"), "{error}");
}

#[test]
fn a_snapshot_that_would_freeze_the_canister_is_refused_unless_forced() {
    use ic_management_canister_types as ic;
    let user = User::new();
    user.ok(&["start"]);
    let notes = deploy_notes(&user);
    // A freezing threshold of 10 million years: the snapshot's storage alone would then
    // cost more than the 100 T cycles the canister holds.
    let settings = ic::UpdateSettingsArgs {
        canister_id: notes,
        settings: ic::CanisterSettings {
            freezing_threshold: Some(candid::Nat::from(315_360_000_000_000u64)),
            ..Default::default()
        },
        sender_canister_version: None,
    };
    // As the canister's controller: the xtask's identity.
    let mut replica = Replica::open(&user.state.path().join("embedded")).unwrap();
    replica
        .update(
            crate::identity::me(&user),
            Principal::management_canister(),
            "update_settings",
            &Encode!(&settings).unwrap(),
        )
        .unwrap();
    drop(replica);
    let refused = user.fails(1, &["snapshot", "--canister", "notes"]);
    assert!(
        refused.contains("notes cannot afford this snapshot"),
        "{refused}"
    );
    assert!(
        refused.contains("above the 100_000_000_000_000 cycles it holds"),
        "{refused}"
    );
    assert!(refused.contains("--force"), "{refused}");
    let listed = user.json(&["list", "--canister", "notes"]);
    assert_eq!(
        listed["snapshots"].as_array().unwrap().len(),
        0,
        "nothing was taken"
    );
    let status = user.json(&["status", "--canister", "notes"]);
    assert_eq!(
        status["status"], "running",
        "the canister was never stopped"
    );

    user.json(&["snapshot", "--canister", "notes", "--force"]);
    let out = user.ok(&["snapshot", "--canister", "notes", "--force", "--running"]);
    assert!(out.contains("while the canister runs"), "{out}");
    assert!(
        !out.contains("stop_canister"),
        "a running snapshot stops nothing: {out}"
    );
    let listed = user.json(&["list", "--canister", "notes"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 2);
}

#[test]
fn a_set_of_canisters_is_captured_and_restored_together_or_not_at_all() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    user.ok(&["populate", "Hi there!"]);
    let notes = deploy_notes(&user);
    call(&user, notes, "add", Encode!(&"first").unwrap(), false);
    let both = ["--canister", "chat", "--canister", "notes"];
    fn with<'a>(args: &[&'a str], canisters: &[&'a str]) -> Vec<&'a str> {
        [args, canisters].concat()
    }
    let with_both = |args: &[&'static str]| with(args, &both);

    let set = user.json(&with_both(&["snapshot"]));
    let set_id = set["set_id"].as_str().unwrap().to_owned();
    assert_eq!(set["members"].as_array().unwrap().len(), 2, "{set}");

    user.ok(&["break"]);
    call(&user, notes, "clear", Encode!().unwrap(), false);
    let restored = user.json(&with_both(&["restore"]));
    assert_eq!(
        restored["set_id"],
        set_id.as_str(),
        "the newest set of these two"
    );
    assert_eq!(notes_count(&user, notes), 1);
    let verified = user.json(&["verify", "--set", &set_id]);
    let members = verified["members"].as_array().unwrap();
    assert_eq!(members[0]["messages"], 1, "the chat is back: {verified}");
    assert_eq!(members[1]["module_hash"], true);
    let listed = user.json(&with_both(&["list"]));
    assert!(listed["sets"].get(&set_id).is_some(), "{listed}");

    // The notes at the IC's 10-snapshot limit: the set fails at its second member.
    for _ in 0..9 {
        user.json(&["snapshot", "--canister", "notes"]);
    }
    let chat_snapshots = || user.json(&["list"])["snapshots"].as_array().unwrap().len();
    assert_eq!(chat_snapshots(), 1);
    let refused = user.fails(1, &with_both(&["snapshot"]));
    assert!(refused.contains("snapshotting notes failed"), "{refused}");
    assert!(
        refused.contains("every canister of the set was started again, and no set was recorded"),
        "{refused}"
    );
    assert_eq!(
        chat_snapshots(),
        1,
        "the chat's snapshot of the failed set is deleted"
    );
    for canister in ["chat", "notes"] {
        let status = user.json(&["status", "--canister", canister]);
        assert_eq!(status["status"], "running", "{canister}");
    }
    let listed = user.json(&with_both(&["list"]));
    assert_eq!(listed["sets"].as_object().unwrap().len(), 1, "{listed}");
    let error = user.fails(1, &with_both(&["download", "-o", "x"]));
    assert!(error.contains("this command acts on one"), "{error}");
}

#[test]
fn scheduled_backups_are_drilled_pruned_and_keep_the_last_good_one_when_a_run_fails() {
    let user = User::new();
    user.ok(&["start"]);
    let notes = deploy_notes(&user);
    call(&user, notes, "add", Encode!(&"first").unwrap(), false);
    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().to_str().unwrap();
    let run = [
        "backup",
        "--canister",
        "notes",
        "--dir",
        dir,
        "--keep",
        "1",
        "--check",
        "count",
    ];

    let first = user.ok(&run);
    assert_eq!(first.lines().count(), 1, "one line per run: {first}");
    assert!(first.contains("backup of notes ok"), "{first}");
    assert!(
        first.contains("drill: `count ()` answered as at the snapshot"),
        "{first}"
    );
    call(&user, notes, "add", Encode!(&"second").unwrap(), false);
    let second = user.json(&run);
    let kept = second["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "--keep 1: {second}");
    assert_eq!(second["deleted"].as_array().unwrap().len(), 1);
    let newest = kept[0].as_str().unwrap();
    let inspected = user.json(&["inspect", newest, "--query", "count"]);
    assert_eq!(inspected["answer"]["reply"], "(2 : nat64)");
    let snapshots = user.json(&["list", "--canister", "notes"]);
    assert_eq!(
        snapshots["snapshots"].as_array().unwrap().len(),
        1,
        "each run replaces the last run's snapshot on the canister"
    );

    // A run that fails (its check query does not exist) keeps the good backup.
    let mut broken = run.to_vec();
    *broken.last_mut().unwrap() = "counts";
    let output = user.run(&broken);
    assert_eq!(output.status.code(), Some(1));
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("backup of notes FAILED"), "{log}");
    assert!(log.contains("at the snapshot"), "{log}");
    assert!(log.contains("the earlier backups are kept"), "{log}");
    assert!(std::path::Path::new(newest).is_dir());
    user.json(&["verify-backup", newest]);
    assert_eq!(
        user.json(&["status", "--canister", "notes"])["status"],
        "running"
    );
}

#[test]
fn a_backup_loop_runs_every_interval_and_ends_on_sigterm_with_the_canister_running() {
    use std::io::{BufRead, BufReader};
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    let backups = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--backend", "embedded", "--state-dir"])
        .arg(user.state.path())
        .args(["backup", "--every", "1s", "--keep", "2", "--dir"])
        .arg(backups.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for run in 0..3 {
        let line = lines.next().unwrap().unwrap();
        assert!(line.contains("backup of chat ok"), "run {run}: {line}");
        assert!(
            line.contains("drill: `dump ()` answered as at the snapshot"),
            "{line}"
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(!status.success(), "SIGTERM ends the loop: {status}");
    assert_eq!(user.json(&["status"])["status"], "running");
    // A signal during a run's download would leave it unfinished, for the next run.
    let kept = std::fs::read_dir(backups.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("manifest.json").is_file())
        .count();
    assert_eq!(kept, 2, "--keep 2");
}

#[test]
fn a_clone_puts_one_canisters_snapshot_on_another_and_verifies_it() {
    let user = User::new();
    user.ok(&["start"]);
    let notes = deploy_notes(&user);
    for note in ["first", "second"] {
        call(&user, notes, "add", Encode!(&note).unwrap(), false);
    }
    let target = user.json(&["deploy", "--canister", "copy", "--wasm", &relay_wasm()]);
    let copy = Principal::from_text(target["canister"].as_str().unwrap()).unwrap();
    user.json(&["snapshot", "--canister", "notes", "--check", "count"]);

    let cloned = user.json(&["clone", "--from", "notes", "--to", "copy"]);
    assert_eq!(cloned["verified"]["check"], "count ()");
    assert_eq!(cloned["verified"]["module_hash"], true);
    assert_eq!(
        notes_count(&user, copy),
        2,
        "the copy runs the notes, with both"
    );
    let notes_status = user.json(&["status", "--canister", "notes"]);
    let copy_status = user.json(&["status", "--canister", "copy"]);
    assert_eq!(copy_status["module_hash"], notes_status["module_hash"]);
    assert_eq!(copy_status["status"], "running");
    // The copy is a canister of its own: changing it leaves the original alone.
    call(&user, copy, "clear", Encode!().unwrap(), false);
    assert_eq!(notes_count(&user, notes), 2);
    let error = user.fails(1, &["clone", "--from", "notes", "--to", "missing"]);
    assert!(error.contains("no canister `missing`"), "{error}");
}

#[test]
fn diff_names_what_changed_between_two_backups_of_any_canister() {
    let user = User::new();
    user.ok(&["start"]);
    let notes = deploy_notes(&user);
    let backups = tempfile::tempdir().unwrap();
    let (a, b) = (backups.path().join("a"), backups.path().join("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    user.json(&["snapshot", "--canister", "notes"]);
    user.json(&["download", "--canister", "notes", "-o", a]);
    call(
        &user,
        notes,
        "add",
        Encode!(&"x".repeat(200_000)).unwrap(),
        false,
    );
    user.json(&["snapshot", "--canister", "notes"]);
    user.json(&["download", "--canister", "notes", "-o", b]);

    let changes = user.json(&["diff", a, b]);
    assert_eq!(changes["module_changed"], false);
    assert_eq!(changes["globals_changed"], false);
    assert!(changes["metadata_changed"].as_array().unwrap().is_empty());
    let heap = &changes["memories"][0];
    assert_eq!(heap["memory"], "heap");
    assert!(
        !heap["changed_pages"].as_array().unwrap().is_empty(),
        "a 200 kB note is on the heap: {changes}"
    );
    let stable = &changes["memories"][1];
    assert!(
        stable["changed_pages"].as_array().unwrap().is_empty(),
        "the notes write stable memory only on upgrade: {changes}"
    );
    assert!(
        changes["added"].as_array().unwrap().is_empty(),
        "not a chat"
    );
    let same = user.json(&["diff", a, a]);
    assert!(
        same["memories"][0]["changed_pages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_set_downloads_verifies_uploads_and_prunes_as_one() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    user.ok(&["populate", "Hi there!"]);
    let notes = deploy_notes(&user);
    call(&user, notes, "add", Encode!(&"first").unwrap(), false);
    let both = ["snapshot", "--canister", "chat", "--canister", "notes"];
    let set_id = user.json(&both)["set_id"].as_str().unwrap().to_owned();

    let backups = tempfile::tempdir().unwrap();
    let dir = backups.path().join("set");
    let dir = dir.to_str().unwrap();
    let downloaded = user.json(&["download", "--set", &set_id, "-o", dir]);
    assert_eq!(
        downloaded["members"].as_array().unwrap().len(),
        2,
        "{downloaded}"
    );
    assert!(std::path::Path::new(dir).join("set.json").is_file());
    assert_eq!(user.json(&["verify-backup", dir])["intact"], true);
    let inspected = user.json(&["inspect", &format!("{dir}/notes"), "--query", "count"]);
    assert_eq!(inspected["answer"]["reply"], "(1 : nat64)");

    user.ok(&["break"]);
    call(&user, notes, "clear", Encode!().unwrap(), false);
    let uploaded = user.json(&["upload", dir]);
    let copy = uploaded["set_id"].as_str().unwrap().to_owned();
    assert_ne!(copy, set_id);
    user.json(&["restore", "--set", &copy]);
    assert_eq!(notes_count(&user, notes), 1);
    let verified = user.json(&["verify", "--set", &copy]);
    assert_eq!(verified["members"][0]["messages"], 1, "{verified}");

    let pruned = user.json(&["prune", "--sets", "--keep", "1"]);
    assert_eq!(pruned["deleted"], serde_json::json!([set_id]));
    assert_eq!(pruned["kept"], serde_json::json!([copy]));
    let listed = user.json(&["list", "--canister", "notes"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn all_takes_every_canister_the_embedded_replica_deployed_as_one_set() {
    let user = User::new();
    user.ok(&["start"]);
    user.ok(&["deploy"]);
    user.ok(&["deploy", "--canister", "notes", "--wasm", &wasm("notes")]);
    let set = user.json(&["snapshot", "--all"]);
    let members: Vec<&str> = set["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["canister"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["chat", "notes"]);
    let restored = user.json(&["restore", "--all"]);
    assert_eq!(restored["set_id"], set["set_id"]);
    let error = user.fails(1, &["status", "--all"]);
    assert!(error.contains("this command acts on one"), "{error}");
}
