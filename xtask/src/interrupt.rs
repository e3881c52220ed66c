//! Ctrl-C that leaves a consistent state: outside a critical section it ends the process at
//! once (every change already committed is whole), and the terminal ends the SDK command
//! under way with it; inside one — while the canister is stopped for a snapshot or restore
//! — it waits until the canister runs again, and SDK commands started there ignore it.

use std::sync::atomic::{AtomicBool, Ordering};

static CRITICAL: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a process ended by SIGINT.
const INTERRUPTED_EXIT: i32 = 130;

pub fn install() {
    let handler = || {
        if CRITICAL.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("interrupted: finishing the step so the canister runs again…");
        } else {
            eprintln!("interrupted");
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

/// Ends the process as Ctrl-C does when a tool it ran outside a critical section was ended
/// by Ctrl-C: the terminal sent it to both, and the tool's failure must not be reported (nor
/// exit 1) before the handler's exit 130 comes.
pub fn after_child(status: std::process::ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    let by_ctrl_c =
        status.signal() == Some(libc::SIGINT) || status.code() == Some(INTERRUPTED_EXIT);
    if by_ctrl_c && !CRITICAL.load(Ordering::SeqCst) {
        eprintln!("interrupted");
        std::process::exit(INTERRUPTED_EXIT);
    }
}

/// Makes `command` ignore Ctrl-C when it is started inside a critical section, so that it
/// finishes the step. It stays in the terminal's process group, so it can still ask for a
/// password, and a closed terminal still ends it.
pub fn shield(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    if !CRITICAL.load(Ordering::SeqCst) {
        return;
    }
    // SAFETY: between fork and exec the child only calls signal(2), which is
    // async-signal-safe; an ignored signal stays ignored across exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
}
