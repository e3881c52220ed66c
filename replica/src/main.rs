//! The replica as a program: serves a state directory over the IC HTTP interface. It also
//! speaks icp-cli's network-launcher contract (`--state-dir`, `--bind`, `--gateway-port`,
//! `--status-dir`, …; unknown flags ignored), so `ICP_CLI_NETWORK_LAUNCHER_PATH=<this>
//! icp network start -d` runs it as icp's local network and writes `status.json` when ready.

use std::io::Write;
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
};

const USAGE: &str =
    "usage: replica [--state-dir DIR] [--bind IP] [--port P | --gateway-port P] [--status-dir DIR]";

struct Options {
    state_dir: PathBuf,
    bind: IpAddr,
    port: u16,
    status_dir: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        state_dir: PathBuf::from(".replica"),
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        status_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let known = [
            "--state-dir",
            "--bind",
            "--port",
            "--gateway-port",
            "--status-dir",
        ];
        if name == "--help" || name == "-h" {
            return Err(USAGE.into());
        }
        if !known.contains(&name.as_str()) {
            // The launcher contract passes flags for features this replica does not have
            // (--ii, --nns, --domain, …); they are ignored, as the real launcher ignores
            // flags newer than itself.
            continue;
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value; {USAGE}"))?;
        match name.as_str() {
            "--state-dir" => options.state_dir = PathBuf::from(value),
            "--bind" => {
                options.bind = value
                    .parse()
                    .map_err(|_| format!("--bind {value}: not an IP address"))?;
            }
            "--port" | "--gateway-port" => {
                options.port = value
                    .parse()
                    .map_err(|_| format!("{name} {value}: not a port number"))?;
            }
            _ => options.status_dir = Some(PathBuf::from(value)),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let address = SocketAddr::new(options.bind, options.port);
    let status_dir = options.status_dir.clone();
    let result = replica::http::run_until_signal(&options.state_dir, address, |server| {
        let root_key = hex(&server.root_key);
        // The launcher may stop reading our output; the replica serves on regardless.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "replica listening on http://{}", server.address);
        let _ = writeln!(out, "root key: {root_key}");
        let _ = out.flush();
        if let Some(dir) = status_dir {
            let status = format!(
                "{{\"v\":\"1\",\"gateway_port\":{},\"root_key\":\"{root_key}\"}}\n",
                server.address.port()
            );
            if let Err(e) = std::fs::write(dir.join("status.json"), status) {
                eprintln!("cannot write status.json in {}: {e}", dir.display());
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
