//! A full disk: a replica whose files may not grow past a few hundred KiB (`ulimit -f`, with
//! SIGXFSZ ignored, so writes fail as on a full disk) refuses the call it cannot record with
//! a clear error, keeps answering, and loses nothing it acknowledged: reopened with room,
//! the chat holds exactly the acknowledged messages.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use candid::{Decode, Encode};
use common::{Local, chat_wasm, user};
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
        .arg(r#"trap '' XFSZ; ulimit -f 512; exec "$0" --exact child --nocapture --test-threads 1 -q"#)
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
