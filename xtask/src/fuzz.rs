//! `cargo xtask fuzz`: the replica's fuzz targets (`fuzz/`). By default each runs under
//! cargo-fuzz, coverage-guided, for the seconds given, growing its corpus in `fuzz/corpus/`;
//! `--smoke` (CI) runs each plain build over the committed corpus plus a few thousand
//! mutations, in seconds. Prints the executions per target and in all.

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};
use xshell::cmd;

use crate::project;

pub const TARGETS: [&str; 4] = ["envelope", "management", "upload", "state"];
/// Mutations per target in a smoke run.
const SMOKE_RUNS: u32 = 3000;

pub fn run(smoke: bool, seconds: u32, only: &[String]) -> Result<()> {
    let targets: Vec<&str> = if only.is_empty() {
        TARGETS.to_vec()
    } else {
        for name in only {
            if !TARGETS.contains(&name.as_str()) {
                bail!(
                    "no fuzz target `{name}`: the targets are {}",
                    TARGETS.join(", ")
                );
            }
        }
        only.iter().map(String::as_str).collect()
    };
    let sh = project::shell()?;
    let cargo = project::cargo();
    if smoke {
        // With `--tests`, features resolve as for `cargo xtask test`, whose build this reuses.
        cmd!(sh, "{cargo} build --locked --workspace --bins --tests").run()?;
    }
    let mut total = 0u64;
    for target in targets {
        let corpus = project::root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let runs = if smoke {
            smoke_run(target, &corpus)?
        } else {
            fuzz_run(target, &corpus, seconds)?
        };
        println!("{target}: {runs} executions, no crash");
        total += runs;
    }
    println!("in all: {total} executions, no crash");
    Ok(())
}

/// The plain build over the committed corpus (read only) and some mutations of it.
fn smoke_run(target: &str, corpus: &Path) -> Result<u64> {
    let scratch = tempfile::tempdir()?;
    let binary = project::target_dir().join("debug").join(target);
    let output = Command::new(&binary)
        .arg(scratch.path())
        .arg(corpus)
        .arg(format!("-runs={SMOKE_RUNS}"))
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    finished(target, &output)
}

/// cargo-fuzz, coverage-guided, for `seconds`, growing the corpus.
fn fuzz_run(target: &str, corpus: &Path, seconds: u32) -> Result<u64> {
    let output = Command::new(project::cargo())
        .args(["fuzz", "run", "-s", "none", target])
        .arg(corpus)
        .args(["--", &format!("-max_total_time={seconds}")])
        // cargo-fuzz passes flags that stable Rust accepts only this way; no nightly needed.
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(project::root())
        .output()
        .context("cannot run cargo fuzz: install it with `cargo install cargo-fuzz`")?;
    finished(target, &output)
}

/// The executions libFuzzer reports (`Done N runs in …`), or the crash it found.
fn finished(target: &str, output: &std::process::Output) -> Result<u64> {
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        bail!(
            "fuzz target {target} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    log.lines()
        .find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse().ok())
        .with_context(|| format!("fuzz target {target} printed no `Done N runs`: {log}"))
}
