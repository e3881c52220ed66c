//! The state directory: one process at a time, and damage detected, never used silently.

use crate::common::{Local, user, wat};
use replica::{Replica, StoreError};

const COUNTER: &str = include_str!("common/counter.wat");

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let local = Local::new();
    let error = Replica::open(local.dir.path()).err().expect("locked");
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("in use by another replica process")
    );
}

#[test]
fn a_corrupted_page_is_detected_and_named() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    local.replica.update(user(), counter, "inc", &[]).unwrap();
    let dir = local.dir.path().to_owned();
    let local = local.reopen();
    // Flip the last byte of every pack: some object's bytes no longer match their hash.
    for entry in std::fs::read_dir(dir.join("packs")).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let mut local = local.reopen();
    let reject = local
        .replica
        .query(user(), counter, "read", &[])
        .unwrap_err();
    assert!(
        reject.message.contains("does not match its checksum"),
        "{reject}"
    );
    assert!(reject.message.contains(".pack"), "names the file: {reject}");
}

#[test]
fn a_corrupted_manifest_is_refused_on_open() {
    let mut local = Local::new();
    local.deploy(wat(COUNTER));
    let dir = local.dir.path().to_owned();
    let Local { dir: tmp, replica } = local;
    drop(replica);
    let path = dir.join("state");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let error = Replica::open(&dir).err().expect("corrupt");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("state is corrupt"), "{error}");
    drop(tmp);
}

#[test]
fn an_interrupted_commit_leaves_the_last_committed_state() {
    let mut local = Local::new();
    let counter = local.deploy(wat(COUNTER));
    local.replica.update(user(), counter, "inc", &[]).unwrap();
    let dir = local.dir.path().to_owned();
    let local = local.reopen();
    // What a kill between writing and renaming leaves behind.
    std::fs::write(dir.join("packs/0000000000000099.pack.tmp"), b"half a pack").unwrap();
    std::fs::write(dir.join("state.tmp"), b"half a manifest").unwrap();
    let mut local = local.reopen();
    let reply = local.replica.query(user(), counter, "read", &[]).unwrap();
    assert_eq!(&reply[..4], &1u32.to_le_bytes());
    assert!(
        !dir.join("packs/0000000000000099.pack.tmp").exists(),
        "cleaned up at open"
    );
}

#[test]
fn a_flipped_byte_in_a_kept_file_is_named() {
    let local = Local::new();
    let path = local.dir.path().join("keys");
    let kept = local.replica.keys().unwrap();
    assert_eq!(
        local.replica.keys().unwrap().root_der,
        kept.root_der,
        "read back as written"
    );
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let Err(error) = local.replica.keys() else {
        panic!("a damaged key was used");
    };
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("keys is corrupt"), "{error}");
}

#[test]
fn a_kept_file_from_before_checksums_is_read_and_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let local = Local::new();
    let path = local.dir.path().join("keys");
    std::fs::write(&path, [9u8; 64]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let kept = local.replica.keys().unwrap();
    assert!(std::fs::read(&path).unwrap().starts_with(b"CSKF"), "sealed");
    assert_eq!(local.replica.keys().unwrap().root_der, kept.root_der);
}

#[test]
fn reopening_while_the_process_starts_programs_never_finds_the_state_locked() {
    // A program starting holds a copy of every descriptor until it has loaded, the lock's
    // among them; a replica closed and opened again meanwhile must not take that for
    // another process.
    let dir = tempfile::tempdir().unwrap();
    drop(Replica::open(dir.path()).unwrap());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::Command::new("true").status().unwrap();
            }
        });
        for round in 0..300 {
            if let Err(error) = Replica::open(dir.path()) {
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("round {round}: {error}");
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}
