//! How the benches report: one JSON line per figure on stdout — median, min and max of the
//! runs, and, for a speed, its baseline measured in the same run and the ratio to it — which
//! `cargo xtask bench` turns into a table and a chart.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::json;

/// Runs per figure.
pub const RUNS: usize = 5;

/// The median, min and max of some runs.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: sorted[sorted.len() / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    pub fn of_ms(runs: &[Duration]) -> Self {
        Self::of(
            &runs
                .iter()
                .map(|d| d.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
    }

    pub fn one(value: f64) -> Self {
        Self::of(&[value])
    }
}

/// A target: met when the median is at most (or, for rates, at least) `limit`.
pub struct Target {
    pub text: String,
    pub met: bool,
}

pub fn at_most(spread: Spread, limit: f64, text: &str) -> Option<Target> {
    Some(Target {
        text: text.into(),
        met: spread.median <= limit,
    })
}

pub fn at_least(spread: Spread, limit: f64, text: &str) -> Option<Target> {
    Some(Target {
        text: text.into(),
        met: spread.median >= limit,
    })
}

/// Prints one figure. `baseline`: its name and spread, when the figure is a speed.
pub fn report(
    group: &str,
    name: &str,
    unit: &str,
    spread: Spread,
    baseline: Option<(&str, Spread)>,
    target: Option<Target>,
) {
    let mut line = json!({
        "group": group,
        "name": name,
        "unit": unit,
        "median": spread.median,
        "min": spread.min,
        "max": spread.max,
    });
    if let Some((base, base_spread)) = baseline {
        line["baseline"] = json!({ "name": base, "median": base_spread.median });
        line["ratio"] = json!(spread.median / base_spread.median);
    }
    if let Some(target) = target {
        line["target"] = json!(target.text);
        line["met"] = json!(target.met);
    }
    println!("{line}");
}

/// Times `f` `RUNS` times.
pub fn time_runs(mut f: impl FnMut()) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect()
}

/// A memcpy of `size` bytes, the baseline for moving memory around.
pub fn memcpy(size: usize) -> Spread {
    let source = vec![7u8; size];
    let mut target = vec![0u8; size];
    Spread::of_ms(&time_runs(|| {
        target.copy_from_slice(std::hint::black_box(&source));
        std::hint::black_box(&target);
    }))
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn memory(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The peak resident set size `run` reaches above the resident size before it, in bytes
/// (negative when it freed more than it used); `None` when the kernel did not reset the
/// peak (`/proc/self/clear_refs`), so that a figure is never one the reset would have hidden.
pub fn peak_above(run: impl FnOnce()) -> Option<i64> {
    let before = memory("VmRSS") as i64;
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    // After a reset the peak is the current size, give or take what moved meanwhile.
    if memory("VmHWM") as i64 > memory("VmRSS") as i64 + (16 << 20) {
        return None;
    }
    run();
    Some(memory("VmHWM") as i64 - before)
}

/// Total bytes of the files under `dir`.
pub fn disk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&entry.path()),
            _ => entry.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
