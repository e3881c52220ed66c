//! The `replica` program's command line: `--version` in the form the pocket-ic crate
//! accepts, an unknown flag refused before anything is made, and the PocketIC server's
//! port file and TTL. (icp-cli's launcher contract, with its unknown flags, runs in
//! `icp_cli.rs` and the xtask's icp tests.)

use std::{
    net::TcpStream,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn replica() -> Command {
    Command::new(env!("CARGO_BIN_EXE_replica"))
}

#[test]
fn the_version_is_a_pocketic_servers_with_this_replica_as_build_metadata() {
    let output = replica().arg("--version").output().unwrap();
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    // The pocket-ic crate splits at the first space and parses the rest as semver 16.x.
    let (name, version) = line.trim_end().split_once(' ').unwrap();
    assert_eq!(name, "pocket-ic-server");
    let (release, build) = version.split_once('+').unwrap();
    let numbers: Vec<u64> = release.split('.').map(|n| n.parse().unwrap()).collect();
    assert_eq!((numbers.len(), numbers[0]), (3, 16), "{line}");
    assert_eq!(
        build,
        concat!("canister-snapshots-replica.", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_flag_is_refused_with_the_usage_and_nothing_is_made() {
    let cwd = tempfile::tempdir().unwrap();
    let output = replica()
        .arg("--verison")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("unexpected argument '--verison'"), "{said}");
    assert!(
        said.contains("a similar argument exists: '--version'"),
        "{said}"
    );
    assert!(
        said.contains("For more information, try '--help'."),
        "{said}"
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "no state made"
    );
}

#[test]
fn the_port_file_is_claimed_once_written_when_listening_and_removed_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("pocket_ic.port");
    // A relative state directory, whose parent is the empty path.
    let mut first = replica()
        .current_dir(dir.path())
        .args(["--state-dir", "state"])
        .arg("--port-file")
        .arg(&port_file)
        .args(["--ttl", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let port: u16 = loop {
        let written = std::fs::read_to_string(&port_file).unwrap_or_default();
        if let Some(port) = written.strip_suffix('\n') {
            break port.parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no port written"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    TcpStream::connect(("127.0.0.1", port)).expect("it listens on the port it wrote");

    // A second server finds the file taken: another serves its clients, so it ends at once.
    let second = replica()
        .arg("--state-dir")
        .arg(dir.path().join("second"))
        .arg("--port-file")
        .arg(&port_file)
        .output()
        .unwrap();
    assert!(second.status.success());
    assert!(second.stdout.is_empty() && second.stderr.is_empty());
    assert!(!dir.path().join("second").exists(), "it made nothing");

    // Two seconds without a request end the first, and its port file goes with it.
    let status = first.wait().unwrap();
    assert!(status.success());
    assert!(!port_file.exists());
}
