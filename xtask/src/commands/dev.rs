//! The project's own commands, which need no backend: build, test, bench, fuzz, serve and
//! install-icp.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::{bench, build, fuzz, project, test, tools};

#[derive(Args)]
pub struct Build;

impl Run for Build {
    type Output = build::Artifact;

    fn run(self, cx: &mut Context) -> Result<build::Artifact> {
        let artifact = build::build()?;
        if !cx.out.json {
            artifact.report();
        }
        Ok(artifact)
    }
}

#[derive(Args)]
pub struct Test;

impl Run for Test {
    type Output = ();

    fn run(self, _: &mut Context) -> Result<()> {
        test::run()
    }
}

#[derive(Args)]
pub struct Bench {
    /// Small sizes on the dev profile, in seconds (what CI runs).
    #[arg(long)]
    quick: bool,
}

impl Run for Bench {
    type Output = ();

    fn run(self, _: &mut Context) -> Result<()> {
        bench::run(self.quick)
    }
}

#[derive(Args)]
pub struct Fuzz {
    /// The plain build over the committed corpus and a few thousand mutations (CI).
    #[arg(long)]
    smoke: bool,
    /// Seconds per target under cargo-fuzz.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Targets to run [default: all: envelope, management, upload, state].
    targets: Vec<String>,
}

impl Run for Fuzz {
    type Output = ();

    fn run(self, _: &mut Context) -> Result<()> {
        fuzz::run(self.smoke, self.seconds, &self.targets)
    }
}

#[derive(Args)]
pub struct InstallIcp;

/// Where icp-cli was installed.
#[derive(Serialize)]
pub struct Installed {
    pub icp: PathBuf,
}

impl Run for InstallIcp {
    type Output = Installed;

    fn run(self, cx: &mut Context) -> Result<Installed> {
        let icp = tools::install_icp()?;
        cx.out.say(format!("icp-cli: {}", icp.display()));
        Ok(Installed { icp })
    }
}

#[derive(Args)]
pub struct Serve {
    #[arg(long, default_value_t = 4943)]
    port: u16,
    /// The replica's state [default: <state-dir>/embedded].
    #[arg(long)]
    state: Option<PathBuf>,
}

impl Run for Serve {
    type Output = ();

    /// Serves the embedded replica on 127.0.0.1 until SIGINT or SIGTERM.
    fn run(self, _: &mut Context) -> Result<()> {
        let dir = self
            .state
            .unwrap_or_else(|| project::state_dir().join("embedded"));
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        replica::http::run_until_signal(&dir, address, replica::http::Limits::forever(), |server| {
            // Whoever started the server may stop reading its output; it serves on regardless.
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "serving {} on http://{}",
                dir.display(),
                server.address
            );
            let _ = writeln!(out, "root key: {}", project::hex(&server.root_key));
            let _ = writeln!(out, "Ctrl-C stops it; every change is already on disk.");
            let _ = out.flush();
        })
        .map_err(anyhow::Error::msg)
    }
}
