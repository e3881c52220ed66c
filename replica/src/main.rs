//! The replica as a program. Given `--state-dir`, it serves that state over the IC HTTP
//! interface; without, it is a PocketIC server (`http::pocket_ic`): instances are made over
//! its REST interface, and it ends after `--ttl` seconds without a request (60 unless
//! told), as PocketIC does. Its command line is parsed strictly (clap): `--help` and
//! `--version` answer and exit, and an unknown flag is refused with the usage. It also
//! speaks icp-cli's network-launcher
//! contract: run with `--interface-version`, it takes the launcher's flags (`--state-dir`,
//! `--bind`, `--gateway-port`, `--status-dir`, …) and ignores those of features it does not
//! have, as the real launcher ignores flags newer than itself; `status.json` is written
//! once it listens. Server flags follow the PocketIC server's (`--ip-addr`, `--port`,
//! `--port-file`, `--ttl`, `--log-levels`, `--version` as `pocket-ic-server X.Y.Z`, with
//! this project's name and version as semver build metadata).

use std::io::Write;
use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;

/// What `--version` prints: the PocketIC server version whose interface is served, and
/// this program after `+`, where the pocket-ic crate's check reads build metadata.
const VERSION: &str = concat!(
    "pocket-ic-server 16.1.0+canister-snapshots-replica.",
    env!("CARGO_PKG_VERSION")
);

/// Serves a replica's state directory over the IC HTTP interface.
#[derive(Parser)]
#[command(name = "replica", disable_version_flag = true)]
struct Options {
    /// Serve this state directory (created if missing) over the IC HTTP interface; without
    /// it, serve the PocketIC REST interface.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, visible_alias = "bind", default_value = "127.0.0.1")]
    ip_addr: IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(short, long, visible_alias = "gateway-port", default_value_t = 0)]
    port: u16,
    /// A file to write the port to once listening, created only if absent: if it exists,
    /// another server owns it and this one exits at once. Removed on exit.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Exit after this many seconds without a request [default: 60 for a PocketIC server,
    /// never for a state directory].
    #[arg(long)]
    ttl: Option<u64>,
    /// Exit after this many seconds, requests or not.
    #[arg(long)]
    hard_ttl: Option<u64>,
    /// Accepted for the PocketIC server's command line; the replica logs errors only.
    #[arg(long)]
    log_levels: Option<String>,
    /// The directory to write icp-cli's `status.json` into once listening.
    #[arg(long)]
    status_dir: Option<PathBuf>,
    /// Print the version and exit.
    #[arg(long)]
    version: bool,
}

/// The launcher contract's flags this replica reads; the contract's others are ignored.
const LAUNCHER_FLAGS: [&str; 5] = [
    "--state-dir",
    "--bind",
    "--port",
    "--gateway-port",
    "--status-dir",
];

/// The launcher contract's command line: its flags (`--name value` or `--name=value`), with
/// the ones this replica has no feature for (`--ii`, `--nns`, `--domain`, …) skipped.
fn launcher_options(args: &[String]) -> Result<Options, String> {
    let mut kept = vec!["replica".to_owned()];
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        if !LAUNCHER_FLAGS.contains(&name) {
            continue;
        }
        let value = inline
            .or_else(|| rest.next().cloned())
            .ok_or_else(|| format!("{name} needs a value"))?;
        kept.extend([name.to_owned(), value]);
    }
    Options::try_parse_from(kept).map_err(|e| e.to_string())
}

/// Claims the port file: `None` when another server already owns it.
fn claim(port_file: &Path) -> Result<Option<std::fs::File>, String> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(port_file)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(format!("cannot create {}: {e}", port_file.display())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = if args.iter().any(|a| a.starts_with("--interface-version")) {
        match launcher_options(&args) {
            Ok(options) => options,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::from(2);
            }
        }
    } else {
        Options::parse()
    };
    if options.version {
        println!("{VERSION}");
        return ExitCode::SUCCESS;
    }
    let mut port_file = None;
    if let Some(path) = &options.port_file {
        match claim(path) {
            Ok(Some(file)) => port_file = Some((path.clone(), file)),
            // Another server serves this port file's clients.
            Ok(None) => return ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = serve(&options, port_file.as_mut().map(|(_, file)| file));
    if let Some((path, _)) = port_file {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A PocketIC server's default `--ttl`, as PocketIC's.
const POCKET_IC_TTL_S: u64 = 60;

fn serve(options: &Options, port_file: Option<&mut std::fs::File>) -> Result<(), String> {
    let address = SocketAddr::new(options.ip_addr, options.port);
    let Some(state_dir) = &options.state_dir else {
        let limits = replica::http::Limits {
            ttl: Duration::from_secs(options.ttl.unwrap_or(POCKET_IC_TTL_S)),
            hard_ttl: options.hard_ttl.map(Duration::from_secs),
        };
        return replica::http::run_pocket_ic_until_signal(address, limits, |server| {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "PocketIC server listening on http://{}",
                server.address
            );
            let _ = out.flush();
            if let Some(file) = port_file {
                let _ = writeln!(file, "{}", server.address.port()).and_then(|()| file.flush());
            }
        });
    };
    let limits = replica::http::Limits {
        ttl: options.ttl.map_or(Duration::MAX, Duration::from_secs),
        hard_ttl: options.hard_ttl.map(Duration::from_secs),
    };
    replica::http::run_until_signal(state_dir, address, limits, |server| {
        let root_key = hex(&server.root_key);
        // The launcher may stop reading our output; the replica serves on regardless.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "replica listening on http://{}", server.address);
        let _ = writeln!(out, "root key: {root_key}");
        let _ = out.flush();
        if let Some(file) = port_file {
            // Clients read the port once the line ends.
            let _ = writeln!(file, "{}", server.address.port()).and_then(|()| file.flush());
        }
        if let Some(dir) = &options.status_dir {
            let status = format!(
                "{{\"v\":\"1\",\"gateway_port\":{},\"root_key\":\"{root_key}\"}}\n",
                server.address.port()
            );
            if let Err(e) = std::fs::write(dir.join("status.json"), status) {
                eprintln!("cannot write status.json in {}: {e}", dir.display());
            }
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
