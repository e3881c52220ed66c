//! `cargo xtask bench`: every figure of BENCHMARKS.md in one run — the replica's benches
//! (snapshots, calls, instructions), the canister's size, the lifecycle's wall time on the
//! embedded backend and through icp-cli, and the served replica's idle memory — as a
//! Markdown table and an SVG chart under `target/bench/`. `--quick` (for CI) runs small
//! sizes, without recompiling the measured crates at release settings, in seconds, so that
//! the harness never rots.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use xshell::cmd;

use project_tools::CHAT_WASM_ENV;

use crate::{build, preflight, project, tools};

const RUNS: usize = 5;

/// One measured figure, as the replica's benches print it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    group: String,
    name: String,
    unit: String,
    median: f64,
    min: f64,
    max: f64,
    #[serde(default)]
    baseline: Option<Baseline>,
    #[serde(default)]
    ratio: Option<f64>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    met: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Baseline {
    name: String,
    median: f64,
}

impl Figure {
    fn new(group: &str, name: &str, unit: &str, runs: &[f64]) -> Self {
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            group: group.into(),
            name: name.into(),
            unit: unit.into(),
            median: sorted[sorted.len() / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            baseline: None,
            ratio: None,
            target: None,
            met: None,
        }
    }

    fn against(mut self, baseline: &Figure) -> Self {
        self.ratio = Some(self.median / baseline.median);
        self.baseline = Some(Baseline {
            name: baseline.name.clone(),
            median: baseline.median,
        });
        self
    }

    fn target(mut self, text: &str, met: bool) -> Self {
        self.target = Some(text.into());
        self.met = Some(met);
        self
    }
}

pub fn run(quick: bool) -> Result<()> {
    // What the run needs, before minutes of benches: the wasm target, and the real icp-cli
    // that the lifecycle figures run.
    preflight::wasm_target()?;
    tools::icp()?;
    let artifact = build::build()?;
    let started = Instant::now();
    let mut figures = canister_size(&artifact);
    for bench in ["snapshot", "calls", "pocket_ic"] {
        figures.extend(replica_bench(bench, quick, &artifact.wasm)?);
    }
    figures.extend(lifecycle(quick, &artifact.wasm)?);
    figures.push(idle_memory(&artifact.wasm)?);
    let dir = project::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let table = table(&figures);
    std::fs::write(dir.join("results.md"), &table)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&figures)?,
    )?;
    std::fs::write(dir.join("chart.svg"), chart(&figures))?;
    println!("{table}");
    if quick {
        println!(
            "quick mode: small sizes, unoptimised crates, to keep the harness working — not the figures of BENCHMARKS.md"
        );
    }
    println!(
        "{} figures in {:.0} s; written to {}/results.{{md,json}} and chart.svg",
        figures.len(),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

fn canister_size(artifact: &build::Artifact) -> Vec<Figure> {
    let group = "chat canister, wasm size";
    let compiled = Figure::new(
        group,
        "compiled",
        "bytes",
        &[artifact.compiled_bytes as f64],
    );
    let shrunk = Figure::new(
        group,
        "shrunk, with Candid metadata",
        "bytes",
        &[artifact.shrunk_bytes as f64],
    )
    .against(&compiled);
    vec![compiled, shrunk]
}

/// Profile settings of the measured crates in a full run: those of `release`, on the dev
/// profile that built the xtask, so that its dependencies — wasmtime above all, minutes to
/// compile — are reused rather than built again. They stay at the dev profile's opt-level 2.
const MEASURED_OPTIMISED: &[&str] = &[
    "opt-level=3",
    "debug-assertions=false",
    "overflow-checks=false",
    "codegen-units=16",
    "incremental=false",
];

/// Runs one of the replica's benches and reads its figures.
fn replica_bench(bench: &str, quick: bool, wasm: &Path) -> Result<Vec<Figure>> {
    let sh = project::shell()?;
    let cargo = project::cargo();
    // Selecting the xtask too resolves every dependency's features as its own build did.
    let mut options = vec!["--profile".to_owned(), "dev".to_owned()];
    if !quick {
        for package in ["replica", "replica-bench"] {
            for setting in MEASURED_OPTIMISED {
                options.push("--config".into());
                options.push(format!("profile.dev.package.{package}.{setting}"));
            }
        }
    }
    let args: &[&str] = if quick { &["--quick"] } else { &[] };
    eprintln!("bench: {bench}{}", if quick { " (quick)" } else { "" });
    let output = cmd!(
        sh,
        "{cargo} bench --locked -p xtask -p replica-bench {options...} --bench {bench} -- {args...}"
    )
    .env(CHAT_WASM_ENV, wasm)
    .env("REPLICA_BIN", tools::replica_binary()?)
    .read()
    .with_context(|| format!("the {bench} bench failed"))?;
    output
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("the {bench} bench printed {l}")))
        .collect()
}

/// `cargo xtask demo` wall time, embedded (the baseline) and through icp-cli.
fn lifecycle(quick: bool, wasm: &Path) -> Result<Vec<Figure>> {
    let group = "lifecycle, `cargo xtask demo` wall time";
    let embedded = demo_runs("embedded", wasm)?;
    let embedded = Figure::new(group, "embedded backend", "s", &embedded);
    let met = embedded.median <= 1.0;
    let mut figures = vec![embedded.clone().target("≤ 1 s", met)];
    if !quick {
        let icp = demo_runs("icp", wasm)?;
        figures.push(
            Figure::new(group, "icp-cli on the served replica", "s", &icp).against(&embedded),
        );
    }
    Ok(figures)
}

fn demo_runs(backend: &str, wasm: &Path) -> Result<Vec<f64>> {
    let exe = std::env::current_exe()?;
    let icp_home = project::root().join(".tools/icp-home");
    if backend == "icp" {
        // The icp backend builds the replica binary on first use; that is not the demo's time.
        tools::replica_binary()?;
    }
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let state = tempfile::tempdir()?;
        let started = Instant::now();
        let output = Command::new(&exe)
            .args(["--backend", backend, "--state-dir"])
            .arg(state.path())
            .arg("demo")
            .env(CHAT_WASM_ENV, wasm)
            .env("ICP_HOME", &icp_home)
            .env("DO_NOT_TRACK", "1")
            .output()?;
        let elapsed = started.elapsed().as_secs_f64();
        if !output.status.success() {
            bail!(
                "the demo on {backend} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        runs.push(elapsed);
        if backend == "icp" {
            let _ = Command::new(&exe)
                .args(["--backend", "icp", "stop"])
                .env("ICP_HOME", &icp_home)
                .output();
        }
    }
    Ok(runs)
}

/// Resident memory of `cargo xtask serve` on a small state (the demo's), idle.
fn idle_memory(wasm: &Path) -> Result<Figure> {
    let state = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let demo = Command::new(&exe)
        .args(["--backend", "embedded", "--state-dir"])
        .arg(state.path())
        .arg("demo")
        .env(CHAT_WASM_ENV, wasm)
        .output()?;
    if !demo.status.success() {
        bail!("the demo failed: {}", String::from_utf8_lossy(&demo.stderr));
    }
    let mut served = Command::new(&exe)
        .args(["serve", "--port", "0", "--state"])
        .arg(state.path().join("embedded"))
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(served.stdout.take().expect("piped")).lines();
    let ready = lines.next().transpose()?.unwrap_or_default();
    std::thread::sleep(Duration::from_secs(2));
    let rss = resident_bytes(served.id());
    let _ = served.kill();
    let _ = served.wait();
    if !ready.starts_with("serving") {
        bail!("`cargo xtask serve` did not start: {ready}");
    }
    let mib = rss? as f64 / (1 << 20) as f64;
    Ok(
        Figure::new("memory", "served replica, idle, small state", "MiB", &[mib])
            .target("≤ 64 MiB", mib <= 64.0),
    )
}

fn resident_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc")?;
    Ok(kb * 1024)
}

fn number(value: f64) -> String {
    match value.abs() {
        v if v >= 1000.0 => format!("{:.0}", value),
        v if v >= 10.0 => format!("{:.1}", value),
        v if v >= 0.1 => format!("{:.2}", value),
        _ => format!("{:.3}", value),
    }
}

/// The figures as one Markdown table.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| group | figure | median (min–max) | baseline, ratio | target |\n|---|---|---|---|---|\n",
    );
    for f in figures {
        let spread = if f.min == f.max {
            format!("{} {}", number(f.median), f.unit)
        } else {
            format!(
                "{} {} ({}–{})",
                number(f.median),
                f.unit,
                number(f.min),
                number(f.max)
            )
        };
        let ratio = match (&f.baseline, f.ratio) {
            (Some(b), Some(r)) => format!(
                "{}: {} {} → {}×",
                b.name,
                number(b.median),
                f.unit,
                number(r)
            ),
            _ => String::new(),
        };
        let target = match (&f.target, f.met) {
            (Some(t), Some(true)) => format!("{t} ✅"),
            (Some(t), _) => format!("{t} ❌ missed"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {spread} | {ratio} | {target} |\n",
            f.group, f.name
        ));
    }
    out
}

/// Every ratio to a baseline as a bar on a log scale, 1× marked.
pub fn chart(figures: &[Figure]) -> String {
    let bars: Vec<(String, f64)> = figures
        .iter()
        .filter_map(|f| Some((format!("{} — {}", f.group, f.name), f.ratio?)))
        .collect();
    let (left, width, row) = (520.0, 360.0, 22.0);
    let (low, high) = (0.01f64.log10(), 100f64.log10());
    let x = |ratio: f64| left + (ratio.clamp(0.01, 100.0).log10() - low) / (high - low) * width;
    let height = 60.0 + row * bars.len() as f64;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">
<text x="10" y="20" font-size="14">Time (or rate) relative to its baseline in the same run — log scale, 0.01× to 100×</text>
"#,
        left + width + 80.0
    );
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let (from, to) = (x(1.0).min(x(*ratio)), x(1.0).max(x(*ratio)));
        let colour = if *ratio <= 1.0 { "#3a7" } else { "#d73" };
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n<rect x=\"{from:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\"/>\n<text x=\"{:.1}\" y=\"{}\">{}×</text>\n",
            left - 8.0,
            y + 13.0,
            escape(label),
            (to - from).max(1.0),
            row - 6.0,
            to + 4.0,
            y + 13.0,
            number(*ratio)
        ));
    }
    let one = x(1.0);
    svg.push_str(&format!(
        "<line x1=\"{one:.1}\" y1=\"32\" x2=\"{one:.1}\" y2=\"{:.1}\" stroke=\"black\"/>\n<text x=\"{one:.1}\" y=\"{:.1}\" text-anchor=\"middle\">1×</text>\n</svg>\n",
        height - 16.0,
        height - 4.0
    ));
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
