//! The errors callers see: rejects with the IC's reject codes and error codes, and the
//! errors of opening or storing state.

use std::{fmt, path::PathBuf};

/// Reject codes (IC interface spec, "Reject codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RejectCode {
    SysFatal = 1,
    SysTransient = 2,
    DestinationInvalid = 3,
    CanisterReject = 4,
    CanisterError = 5,
    /// The answer of a bounded-wait call is unknown: its deadline passed first.
    SysUnknown = 6,
}

/// The IC's error codes (`IC0xxx`); the first digit is the reject code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorCode {
    CanisterIdAlreadyExists = 205,
    CanisterNotFound = 301,
    CanisterSnapshotNotFound = 305,
    CanisterRejectedMessage = 406,
    UnknownManagementMessage = 407,
    InvalidManagementPayload = 408,
    CanisterSnapshotImmutable = 409,
    CanisterOutOfCycles = 501,
    CanisterTrapped = 502,
    CanisterCalledTrap = 503,
    CanisterContractViolation = 504,
    CanisterInvalidWasm = 505,
    CanisterDidNotReply = 506,
    CanisterOutOfMemory = 507,
    CanisterStopped = 508,
    CanisterStopping = 509,
    CanisterNotStopped = 510,
    CanisterStoppingCancelled = 511,
    CanisterInvalidController = 512,
    CanisterFunctionNotFound = 513,
    CanisterNonEmpty = 514,
    CanisterInstructionLimitExceeded = 522,
    QueryCallGraphTooDeep = 525,
    CompositeQueryCalledInReplicatedMode = 527,
    CanisterMethodNotFound = 536,
    CanisterWasmModuleNotFound = 537,
    InsufficientCyclesInMemoryGrow = 411,
    DeadlineExpired = 601,
}

impl ErrorCode {
    pub fn reject_code(self) -> RejectCode {
        match self as u16 / 100 {
            1 => RejectCode::SysFatal,
            2 => RejectCode::SysTransient,
            3 => RejectCode::DestinationInvalid,
            4 => RejectCode::CanisterReject,
            6 => RejectCode::SysUnknown,
            _ => RejectCode::CanisterError,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IC{:04}", *self as u16)
    }
}

/// A call that did not succeed, as the IC reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{message} (reject code {}{})", *code as u8, error_code.map(|c| format!(", {c}")).unwrap_or_default())]
pub struct Reject {
    pub code: RejectCode,
    /// Absent when a canister rejected the call itself with `ic0.msg_reject`.
    pub error_code: Option<ErrorCode>,
    pub message: String,
    /// Refused before the message ran, where the IC's ingress filter refuses one (no such
    /// canister or method, a caller who is not a controller, `canister_inspect_message`
    /// declining): over HTTP such a call is answered at once and never certified.
    pub at_ingress: bool,
}

impl Reject {
    pub fn new(error_code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: error_code.reject_code(),
            error_code: Some(error_code),
            message: message.into(),
            at_ingress: false,
        }
    }

    /// A reject the canister chose with `ic0.msg_reject`.
    pub fn by_canister(message: impl Into<String>) -> Self {
        Self {
            code: RejectCode::CanisterReject,
            error_code: None,
            message: message.into(),
            at_ingress: false,
        }
    }

    /// What a call gets when the canister answered nothing and has nothing outstanding.
    pub fn did_not_reply(canister: &candid::Principal) -> Self {
        Self::new(
            ErrorCode::CanisterDidNotReply,
            format!("Error from Canister {canister}: Canister did not reply to the call"),
        )
    }

    /// This reject, as the IC's ingress filter gives it (see `at_ingress`).
    pub fn ingress_filter(self) -> Self {
        Self {
            at_ingress: true,
            ..self
        }
    }
}

/// Why the state directory could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is in use by another replica process; stop it or choose another state directory",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("{} is corrupt: {what}; restore it from a backup or start from a fresh state directory", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "{} holds the replica's secret keys but others can read it (mode {mode:o}); make it the owner's alone with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "a canister memory of {bytes} bytes does not fit in this machine's memory; load a smaller snapshot or reinstall the canister"
    )]
    OutOfMemory { bytes: u64 },
    #[error(
        "{} was written by an unsupported format version {found} (this replica reads version {supported})",
        path.display()
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
}

impl StoreError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
