//! Ctrl-C that leaves a consistent state: outside a critical section it ends the process at
//! once (every change already committed is whole), and the SDK command running, if any;
//! inside one — while the canister is stopped for a snapshot or restore — it waits until
//! the canister runs again. SDK commands run in process groups of their own, so that the
//! terminal's Ctrl-C reaches only the xtask, which decides.

use std::{
    io,
    process::{Child, Output},
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};

static CRITICAL: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The SDK command being waited for (its process group's id), or 0.
static RUNNING: AtomicU32 = AtomicU32::new(0);

/// The exit code of a process ended by SIGINT.
const INTERRUPTED_EXIT: i32 = 130;

pub fn install() {
    let handler = || {
        if CRITICAL.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("interrupted: finishing the step so the canister runs again…");
        } else {
            eprintln!("interrupted");
            let group = RUNNING.load(Ordering::SeqCst);
            if group != 0 {
                // SAFETY: kill(2) with a negative pid signals that process group; no memory
                // is involved.
                unsafe { libc::kill(-(group as libc::pid_t), libc::SIGINT) };
            }
            std::process::exit(INTERRUPTED_EXIT);
        }
    };
    // Without a handler Ctrl-C still works, only without the grace period.
    let _ = ctrlc::set_handler(handler);
}

/// Runs `f` without being cut short by Ctrl-C; exits afterwards if one came.
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    CRITICAL.store(true, Ordering::SeqCst);
    let result = f();
    CRITICAL.store(false, Ordering::SeqCst);
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("interrupted after the step finished; the canister is running");
        std::process::exit(INTERRUPTED_EXIT);
    }
    result
}

/// Waits for an SDK command started in a process group of its own (see the module's doc),
/// so that Ctrl-C outside a critical section can end it too.
pub fn wait_for(child: Child) -> io::Result<Output> {
    RUNNING.store(child.id(), Ordering::SeqCst);
    let output = child.wait_with_output();
    RUNNING.store(0, Ordering::SeqCst);
    output
}
