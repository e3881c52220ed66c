//! A full disk: a replica that cannot write refuses the call it cannot record with a clear
//! error, keeps answering, and loses nothing it acknowledged: reopened with room, the chat
//! holds exactly the acknowledged messages. Two disks: a real tmpfs of a few MiB (mounting
//! needs root, as in CI), and files that may not grow past a few hundred KiB (`ulimit -f`,
//! SIGXFSZ ignored), which any user can run.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::common::{Local, chat_wasm, user};
use candid::{Decode, Encode};
use replica::Replica;

const CHILD: &str = "DISK_FULL_TEST_STATE";

fn message(n: usize) -> String {
    format!("{n:04} {}", "x".repeat(1000))
}

#[test]
fn child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let mut replica = Replica::open(std::path::Path::new(&dir)).unwrap();
    let chat = replica.canister_ids()[0];
    for n in 0.. {
        let arg = Encode!(&message(n)).unwrap();
        match replica.update(user(), chat, "append", &arg) {
            Ok(_) => println!("ack {n}"),
            Err(reject) => {
                println!("refused: {}", reject.message);
                break;
            }
        }
    }
    let len = replica
        .query(user(), chat, "len", &Encode!().unwrap())
        .unwrap();
    println!("serves {}", Decode!(&len, u64).unwrap());
}

#[test]
fn a_full_disk_refuses_clearly_and_loses_nothing_acknowledged() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let mut local = Local::new();
    let chat = local.deploy(chat_wasm());
    local
        .update::<()>(chat, "append", ("before the disk filled",))
        .unwrap();
    let dir = local.dir;
    drop(local.replica);

    let exe = std::env::current_exe().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 512; exec "$0" --exact disk_full::child --nocapture --test-threads 1 -q"#)
        .arg(&exe)
        .env(CHILD, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let lines: Vec<String> = BufReader::new(&output.stdout[..])
        .lines()
        .map_while(Result::ok)
        .collect();
    let acked = lines.iter().filter(|l| l.starts_with("ack ")).count();
    let refused = lines
        .iter()
        .find(|l| l.starts_with("refused: "))
        .expect("a call was refused");
    assert!(
        refused.contains("could not record the call, so it did not run")
            && refused.contains("journal"),
        "{refused}"
    );
    assert!(acked > 10, "only {acked} appends fitted");
    assert!(
        lines.contains(&format!("serves {}", acked + 1)),
        "the replica kept answering: {lines:?}"
    );

    let mut local = Local {
        replica: Replica::open(dir.path()).unwrap(),
        dir,
    };
    let messages: Vec<String> = local.query(chat, "dump", ()).unwrap();
    let expected: Vec<String> = std::iter::once("before the disk filled".to_owned())
        .chain((0..acked).map(message))
        .collect();
    assert_eq!(messages, expected, "exactly the acknowledged messages");
    println!("{acked} appends acknowledged before the disk filled; all kept. {refused}");
}

const MIB: u64 = 1 << 20;

/// The chat, read in pages: it holds more than one reply can.
fn whole_chat(local: &mut Local, chat: candid::Principal) -> Vec<String> {
    let mut messages = Vec::new();
    loop {
        let page: Vec<String> = local
            .query(chat, "page", (messages.len() as u64, 500u32))
            .unwrap();
        if page.is_empty() {
            return messages;
        }
        messages.extend(page);
    }
}

/// A tmpfs mounted on `path` until dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// `None` where this process may not mount one (only root may).
    fn mount(path: &Path, size: u64) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Self {
            path: path.to_owned(),
        })
    }

    fn resize(&self, size: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap();
        assert!(status.success(), "remounting to {size} bytes");
    }

    fn used(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=used", "-B1"])
            .arg(&self.path)
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[test]
fn a_full_tmpfs_refuses_clearly_and_once_room_is_made_goes_on_losing_nothing() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), 64 * MIB) else {
        crate::common::skipped(
            "disk_full::a_full_tmpfs_…",
            "mounting a tmpfs needs root; the `ulimit -f` test stands in",
        );
        return;
    };
    let mut local = Local {
        replica: Replica::open(dir.path()).unwrap(),
        dir,
    };
    let chat = local.deploy(chat_wasm());
    local
        .update::<()>(chat, "append", ("before the disk filled",))
        .unwrap();
    let mut local = local.reopen();
    // Room for about 2,000 messages: a checkpoint (every 1,000 calls) runs out of space
    // before the journal does.
    disk.resize(disk.used() + 2 * MIB);

    let mut acked = 0;
    let refused = loop {
        let arg = Encode!(&message(acked)).unwrap();
        match local.replica.update(user(), chat, "append", &arg) {
            Ok(_) => acked += 1,
            Err(reject) => break reject.message,
        }
    };
    assert!(
        refused.contains("could not record the call, so it did not run")
            && refused.contains("No space left on device")
            && refused.contains("make room on the disk"),
        "{refused}"
    );
    assert!(acked > 1000, "only {acked} appends fitted");
    let len: u64 = local.query(chat, "len", ()).unwrap();
    assert_eq!(len, acked as u64 + 1, "the replica kept answering");

    // Room is made; the refused call is sent again, and more, through a checkpoint.
    disk.resize(64 * MIB);
    let sent = acked + 1100;
    for n in acked..sent {
        local.update::<()>(chat, "append", (message(n),)).unwrap();
    }
    let mut local = local.reopen();
    let expected: Vec<String> = std::iter::once("before the disk filled".to_owned())
        .chain((0..sent).map(message))
        .collect();
    let messages = whole_chat(&mut local, chat);
    assert_eq!(messages.len(), expected.len());
    assert!(messages == expected, "exactly the acknowledged messages");
    println!(
        "tmpfs: {acked} appends fitted, then: {refused}; all kept, and {sent} after room was made."
    );
    drop(local);
    drop(disk);
}
