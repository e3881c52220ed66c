//! Backups as a user makes them: download, verify-backup, upload, inspect, diff and prune,
//! through the xtask binary on the embedded backend.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::User;

const CHAT: [&str; 3] = ["Hi there!", "second message", "third message"];

/// What a backup holds besides its manifest, in the dfx/icp layout.
const SNAPSHOT_FILES: [&str; 4] = [
    "metadata.json",
    "wasm_module.bin",
    "wasm_memory.bin",
    "stable_memory.bin",
];

/// A chat, a snapshot of it, and that snapshot downloaded to `backup` in `dir`.
struct Backed {
    user: User,
    id: String,
    dir: tempfile::TempDir,
    backup: PathBuf,
}

impl Backed {
    fn up() -> Self {
        let user = User::chat(&CHAT);
        let id = user.snapshot();
        let dir = backups();
        let backup = dir.path().join("chat");
        download(&user, &id, &backup);
        Self {
            user,
            id,
            dir,
            backup,
        }
    }
}

fn snapshot_count(user: &User) -> usize {
    user.json(&["list"])["snapshots"].as_array().unwrap().len()
}

/// A directory for backups, outside the state directory.
fn backups() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn download(user: &User, id: &str, dir: &Path) -> serde_json::Value {
    user.json(&["download", id, "-o", dir.to_str().unwrap()])
}

fn flip_byte(file: &Path, at: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn download_upload_restore_gives_back_the_same_chat() {
    let user = User::chat(&CHAT);
    let id = user.snapshot();
    let dir = backups();
    let backup = dir.path().join("chat");
    let downloaded = download(&user, &id, &backup);
    assert_eq!(downloaded["snapshot_id"], id.as_str());
    for file in SNAPSHOT_FILES.into_iter().chain(["manifest.json"]) {
        assert!(backup.join(file).is_file(), "no {file} in the backup");
    }
    assert_eq!(
        std::fs::read(backup.join("wasm_module.bin")).unwrap(),
        std::fs::read(&user.wasm).unwrap(),
        "the backup holds the installed module byte for byte"
    );
    let verified = user.json(&["verify-backup", backup.to_str().unwrap()]);
    assert_eq!(verified["intact"], true);

    user.ok(&["break"]);
    let uploaded = user.json(&["upload", backup.to_str().unwrap()]);
    let new_id = uploaded["snapshot_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    // The copy stands on its own once the original is gone.
    user.ok(&["delete", &id]);
    user.ok(&["restore", &new_id]);
    let verified = user.json(&["verify", &new_id]);
    assert_eq!(verified["messages"], 3);
    let now = user.snapshot();
    assert_eq!(user.messages_in(&now), CHAT);
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let user = User::chat(&CHAT);
    let id = user.snapshot();
    let dir = backups();
    let (whole, partial) = (dir.path().join("whole"), dir.path().join("partial"));
    download(&user, &id, &whole);

    // What an interrupted download leaves: its marker, the metadata, memories cut short.
    download(&user, &id, &partial);
    std::fs::remove_file(partial.join("manifest.json")).unwrap();
    let marker = format!(r#"{{"canister_id":"bkyz2-fmaaa-aaaaa-qaaaq-cai","snapshot_id":"{id}"}}"#);
    std::fs::write(marker_of(&partial), marker).unwrap();
    let stable = std::fs::OpenOptions::new()
        .write(true)
        .open(partial.join("stable_memory.bin"))
        .unwrap();
    let length = stable.metadata().unwrap().len();
    stable.set_len(length / 2).unwrap();
    std::fs::remove_file(partial.join("wasm_memory.bin")).unwrap();
    user.fails(4, &["verify-backup", partial.to_str().unwrap()]);

    let resumed = user.ok(&["download", &id, "-o", partial.to_str().unwrap()]);
    assert!(resumed.contains("resuming the download"), "{resumed}");
    for file in ["wasm_memory.bin", "stable_memory.bin"] {
        assert_eq!(
            std::fs::read(partial.join(file)).unwrap(),
            std::fs::read(whole.join(file)).unwrap(),
            "{file} after resuming"
        );
    }
    user.json(&["verify-backup", partial.to_str().unwrap()]);
    let again = user.ok(&["download", &id, "-o", partial.to_str().unwrap()]);
    assert!(again.contains("already holds snapshot"), "{again}");
}

#[test]
fn a_download_killed_at_any_moment_resumes_to_the_same_bytes() {
    let user = User::chat(&CHAT);
    let id = user.snapshot();
    let dir = backups();
    let whole = dir.path().join("whole");
    let started = Instant::now();
    download(&user, &id, &whole);
    let took = started.elapsed();

    // SIGKILL at any moment: in the first rounds anywhere in the command's run, then at
    // growing delays after its marker appeared (the download proper is a few ms of it).
    // Each time the same command resumes, to the same bytes.
    let (mut caught_half_way, rounds) = (0, 25u32);
    for round in 0..rounds {
        let partial = dir.path().join(format!("killed-{round}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["--backend", "embedded", "--state-dir"])
            .arg(user.state.path())
            .args(["download", &id, "-o"])
            .arg(&partial)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round < 5 {
            std::thread::sleep(took.mul_f64(f64::from(round) / 5.0));
        } else {
            let marker = marker_of(&partial);
            let deadline = Instant::now() + took * 3;
            while !marker.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(100));
            }
            std::thread::sleep(Duration::from_micros(500) * (round - 5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if marker_of(&partial).exists() {
            caught_half_way += 1;
            user.fails(4, &["verify-backup", partial.to_str().unwrap()]);
        }
        if partial.exists() {
            user.ok(&["download", &id, "-o", partial.to_str().unwrap()]);
            for file in SNAPSHOT_FILES {
                assert_eq!(
                    std::fs::read(partial.join(file)).unwrap(),
                    std::fs::read(whole.join(file)).unwrap(),
                    "{file} after a kill in round {round}"
                );
            }
            user.json(&["verify-backup", partial.to_str().unwrap()]);
        }
    }
    assert!(caught_half_way > 0, "no kill landed during a download");
    println!(
        "{caught_half_way} of {rounds} kills landed during a download; each resumed to the same bytes"
    );
    // The state the killed processes had open is whole too.
    assert_eq!(user.messages_in(&id), CHAT);
}

#[test]
fn damage_is_named_by_verify_backup_and_refused_by_upload() {
    let Backed {
        user,
        dir: _dir,
        backup,
        ..
    } = Backed::up();
    let path = backup.to_str().unwrap();

    flip_byte(&backup.join("wasm_memory.bin"), 100_000);
    let refused = user.fails(4, &["verify-backup", path]);
    // A file of more than a MiB names the MiB that differs (manifest.rs's tests); the chat's
    // heap is smaller.
    assert!(
        refused.contains("wasm_memory.bin's contents differ from the manifest"),
        "{refused}"
    );
    let refused = user.fails(4, &["upload", path]);
    assert!(refused.contains("nothing was changed"), "{refused}");
    assert_eq!(
        snapshot_count(&user),
        1,
        "a damaged upload adds no snapshot"
    );
    flip_byte(&backup.join("wasm_memory.bin"), 100_000);
    user.json(&["verify-backup", path]);

    std::fs::write(backup.join("notes.txt"), "mine").unwrap();
    let module = std::fs::read(backup.join("wasm_module.bin")).unwrap();
    std::fs::write(backup.join("wasm_module.bin"), &module[..1000]).unwrap();
    std::fs::remove_file(backup.join("wasm_memory.bin")).unwrap();
    let refused = user.fails(4, &["verify-backup", path]);
    for named in [
        "wasm_memory.bin is missing",
        "wasm_module.bin is truncated: 1000 of",
        "notes.txt is an extra file",
    ] {
        assert!(refused.contains(named), "{named:?} not in: {refused}");
    }

    let manifest = backup.join("manifest.json");
    std::fs::write(backup.join("wasm_module.bin"), &module).unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("bkyz2", "bkyz3", 1)).unwrap();
    let refused = user.fails(4, &["verify-backup", path]);
    assert!(refused.contains("manifest.json is damaged"), "{refused}");
}

#[test]
fn inspect_reads_a_snapshot_or_a_backup_without_touching_the_live_canister() {
    let user = User::chat(&CHAT);
    let id = user.snapshot();
    user.ok(&["populate", "after the snapshot"]);
    let dir = backups();
    let backup = dir.path().join("chat");
    download(&user, &id, &backup);

    assert_eq!(user.messages_in(&id), CHAT);
    assert_eq!(user.messages_in(backup.to_str().unwrap()), CHAT);
    let shown = user.ok(&["inspect", backup.to_str().unwrap(), "--show", "1"]);
    assert!(shown.contains("holds 3 messages"), "{shown}");
    assert!(shown.contains("1  Hi there!") && shown.contains("3  third message"));
    assert!(shown.contains("… 1 more …") && !shown.contains("second message"));

    // The live canister still has its four messages and its one snapshot.
    assert_eq!(snapshot_count(&user), 1);
    let now = user.snapshot();
    assert_eq!(user.messages_in(&now).len(), 4);

    // A backup reads with no canister at all: a fresh state directory, nothing deployed.
    let stranger = User::new();
    assert_eq!(stranger.messages_in(backup.to_str().unwrap()), CHAT);
}

#[test]
fn diff_lists_the_messages_added_and_removed() {
    let user = User::chat(&CHAT[..2]);
    let first = user.snapshot();
    user.ok(&["populate", "third message"]);
    let second = user.snapshot();
    user.ok(&["break"]);
    let broken = user.snapshot();

    let grown = user.json(&["diff", &first, &second]);
    assert_eq!(grown["added"], serde_json::json!(["third message"]));
    assert_eq!(grown["removed"], serde_json::json!([]));
    let dir = backups();
    let backup = dir.path().join("second");
    download(&user, &second, &backup);
    let lost = user.json(&["diff", backup.to_str().unwrap(), &broken]);
    assert_eq!(lost["removed"], serde_json::json!(CHAT));
    assert_eq!(lost["added"], serde_json::json!([]));
    let shown = user.ok(&["diff", &first, &second]);
    assert!(shown.contains("+ third message") && shown.contains("0 removed, 1 added"));
}

#[test]
fn prune_keeps_the_newest_snapshots_and_backups() {
    let user = User::chat(&CHAT);
    let ids: Vec<String> = (0..3).map(|_| user.snapshot()).collect();
    let dir = backups();
    let local: Vec<PathBuf> = ids.iter().map(|id| dir.path().join(id)).collect();
    for (id, path) in ids.iter().zip(&local) {
        download(&user, id, path);
    }
    std::fs::create_dir(dir.path().join("mine")).unwrap();

    let dry = user.json(&["prune", "--keep", "1", "--dry-run"]);
    assert_eq!(dry["deleted"], serde_json::json!(ids[..2]));
    assert_eq!(snapshot_count(&user), 3, "a dry run deletes nothing");
    let pruned = user.json(&["prune", "--keep", "1"]);
    assert_eq!(pruned["kept"], serde_json::json!([ids[2]]));
    let listed = user.json(&["list"]);
    assert_eq!(listed["snapshots"][0]["id"], ids[2].as_str());
    assert_eq!(snapshot_count(&user), 1);

    let root = dir.path().to_str().unwrap();
    user.json(&["prune", "--dir", root, "--keep", "2", "--dry-run"]);
    assert!(local[0].is_dir(), "a dry run deletes nothing");
    let pruned = user.json(&["prune", "--dir", root, "--keep", "2"]);
    assert_eq!(pruned["deleted"], serde_json::json!([local[0]]));
    assert!(!local[0].exists() && local[1].is_dir() && local[2].is_dir());
    assert!(
        dir.path().join("mine").is_dir(),
        "what is not a backup stays"
    );
    user.fails(2, &["prune", "--keep", "0"]);
}

#[test]
fn bad_backup_input_gets_a_clear_error_and_changes_nothing() {
    let Backed {
        user,
        id,
        dir,
        backup,
    } = Backed::up();
    let path = backup.to_str().unwrap();

    let foreign = "000000000000000080000000001000020101";
    let refused = user.fails(
        1,
        &[
            "download",
            foreign,
            "-o",
            dir.path().join("x").to_str().unwrap(),
        ],
    );
    assert!(refused.contains("belongs to canister"), "{refused}");
    assert!(!dir.path().join("x").exists());
    let refused = user.fails(1, &["download", &id, "-o", dir.path().to_str().unwrap()]);
    assert!(refused.contains("is not empty"), "{refused}");
    let missing = dir.path().join("missing");
    let refused = user.fails(1, &["upload", missing.to_str().unwrap()]);
    assert!(refused.contains("no directory"), "{refused}");
    let refused = user.fails(2, &["inspect", missing.to_str().unwrap()]);
    assert!(
        refused.contains("neither a directory nor a snapshot id"),
        "{refused}"
    );

    // A backup of another canister: a second chat on the same replica.
    std::fs::remove_file(user.state.path().join("embedded/canister_ids.json")).unwrap();
    user.ok(&["deploy"]);
    let refused = user.fails(1, &["upload", path]);
    assert!(
        refused.contains("is a backup of canister bkyz2"),
        "{refused}"
    );
    assert_eq!(snapshot_count(&user), 0);
    user.json(&["upload", path, "--any-canister"]);
    assert_eq!(snapshot_count(&user), 1);

    // A directory from dfx or icp-cli has no manifest: only --unverified uploads it.
    std::fs::remove_file(backup.join("manifest.json")).unwrap();
    let refused = user.fails(1, &["upload", path]);
    assert!(refused.contains("--unverified"), "{refused}");
    user.json(&["upload", path, "--unverified", "--any-canister"]);
    assert_eq!(snapshot_count(&user), 2);
}

/// Where `cargo xtask download` marks an unfinished download into `dir`: beside it.
fn marker_of(dir: &std::path::Path) -> std::path::PathBuf {
    let name = dir.file_name().unwrap().to_string_lossy();
    dir.with_file_name(format!(".{name}.downloading.json"))
}
