//! Deterministic crash points for the crash-safety tests. Built with the `fault-points`
//! feature (the replica's own tests turn it on), `point(name)` aborts the process — no
//! destructor runs, as if it were killed — on its n-th pass when `REPLICA_CRASH_AT` is
//! `name:n`. Without the feature it is nothing. A test layer may ask to run first
//! (`before_crash`): the power-loss layer writes what a power failure would have kept.

/// The environment variable naming the point to crash at, as `name:n`.
pub const CRASH_AT: &str = "REPLICA_CRASH_AT";

#[cfg(feature = "fault-points")]
static BEFORE_CRASH: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>> = std::sync::OnceLock::new();

/// Runs `hook` at the crash point, just before the process aborts (the first hook only).
#[cfg(feature = "fault-points")]
pub fn before_crash(hook: Box<dyn Fn() + Send + Sync>) {
    let _ = BEFORE_CRASH.set(hook);
}

#[cfg(feature = "fault-points")]
pub fn point(name: &str) {
    use std::sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    };
    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static PASSES: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var(CRASH_AT).ok()?;
        let (name, n) = spec.rsplit_once(':')?;
        Some((name.to_owned(), n.parse().ok()?))
    });
    if let Some((target, n)) = target
        && target == name
        && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        if let Some(hook) = BEFORE_CRASH.get() {
            hook();
        }
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-points"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// The environment variable that makes the allocator refuse stable memory past that many
/// bytes, as a smaller machine's would (for the replay tests).
pub const REFUSE_STABLE_OVER: &str = "REPLICA_REFUSE_STABLE_OVER";

/// Whether a stable memory of `len` bytes is refused by `REFUSE_STABLE_OVER`.
#[cfg(feature = "fault-points")]
pub fn refuses_stable(len: usize) -> bool {
    static OVER: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    OVER.get_or_init(|| std::env::var(REFUSE_STABLE_OVER).ok()?.parse().ok())
        .is_some_and(|over| len > over)
}
