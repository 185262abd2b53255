//! Errors the CLI raises itself, and the mapping of every error to an exit code.
//!
//! This module owns the exit-code table (docs/exit-codes.md mirrors it) and the
//! `error:`/`hint:` presentation. It must not decide *whether* something failed; callers
//! do that and hand over an `anyhow::Error`.

use std::io;

use hearth_api::client::ClientError;
use hearth_api::{ApiError, ErrorCode};

/// Exit code: success.
pub(crate) const EXIT_OK: i32 = 0;
/// Exit code: anything not covered below.
pub(crate) const EXIT_INTERNAL: i32 = 1;
/// Exit code: the command line itself was wrong (clap uses 2 as well).
pub(crate) const EXIT_USAGE: i32 = 2;
/// Exit code: a value was invalid, an id unknown or ambiguous, a file malformed.
pub(crate) const EXIT_INVALID: i32 = 3;
/// Exit code: the daemon is not running or could not be reached.
pub(crate) const EXIT_UNREACHABLE: i32 = 4;
/// Exit code: the identity is locked, or the passphrase was wrong.
pub(crate) const EXIT_LOCKED: i32 = 5;
/// Exit code: reading or writing the disk failed.
pub(crate) const EXIT_STORAGE: i32 = 6;

/// Failures the CLI detects on its own, before or around a daemon call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The command line was incomplete in a way clap cannot see, such as a missing
    /// `--battery` when there is no terminal to ask on.
    #[error("{message}")]
    Usage {
        /// What is missing.
        message: String,
        /// What to type instead.
        hint: String,
    },
    /// A value or a file the user gave is not acceptable.
    #[error("{message}")]
    Invalid {
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The daemon is not running, or did not come up.
    #[error("{message}")]
    Unreachable {
        /// What happened.
        message: String,
        /// The command to run, or the log to read.
        hint: String,
    },
    /// A passphrase is needed and none could be read.
    #[error("{message}")]
    Locked {
        /// What happened.
        message: String,
        /// How to give the passphrase.
        hint: String,
    },
    /// A local file could not be read or written.
    #[error("{message}")]
    Disk {
        /// What failed, with the path.
        message: String,
        /// What to check.
        hint: String,
    },
    /// The user stopped an interactive prompt.
    #[error("stopped; nothing was saved")]
    Cancelled,
}

impl CliError {
    fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => EXIT_USAGE,
            CliError::Invalid { .. } => EXIT_INVALID,
            CliError::Unreachable { .. } => EXIT_UNREACHABLE,
            CliError::Locked { .. } => EXIT_LOCKED,
            CliError::Disk { .. } => EXIT_STORAGE,
            CliError::Cancelled => EXIT_INTERNAL,
        }
    }

    fn hint(&self) -> Option<&str> {
        match self {
            CliError::Usage { hint, .. }
            | CliError::Invalid { hint, .. }
            | CliError::Unreachable { hint, .. }
            | CliError::Locked { hint, .. }
            | CliError::Disk { hint, .. } => Some(hint),
            CliError::Cancelled => None,
        }
    }

    /// A local file problem, with the path and the OS's words.
    pub(crate) fn disk(what: &str, path: &std::path::Path, err: &io::Error) -> CliError {
        CliError::Disk {
            message: format!("could not {what} {}: {err}", path.display()),
            hint: "check that the directory exists, that you may write there and that the disk is not full".into(),
        }
    }
}

/// Maps a daemon error code to an exit code.
pub(crate) fn exit_code_of_api(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::Invalid
        | ErrorCode::NotFound
        | ErrorCode::Ambiguous
        | ErrorCode::NotInitialized
        | ErrorCode::AlreadyInitialized => EXIT_INVALID,
        ErrorCode::Locked | ErrorCode::WrongPassphrase => EXIT_LOCKED,
        ErrorCode::Storage => EXIT_STORAGE,
        _ => EXIT_INTERNAL,
    }
}

/// What to print and how to exit for an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Report {
    /// Process exit code.
    pub(crate) code: i32,
    /// The `error:` line.
    pub(crate) message: String,
    /// The `hint:` line, if there is one.
    pub(crate) hint: Option<String>,
}

/// True when the error is a closed stdout: `hearth log | head` is not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    // A broken control socket is the daemon hanging up on us, not a reader that has
    // had enough: only a broken stdout counts.
    if err
        .chain()
        .any(|cause| cause.downcast_ref::<ClientError>().is_some())
    {
        return false;
    }
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Classifies an error by the first cause we recognise.
pub(crate) fn report(err: &anyhow::Error) -> Report {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return Report {
                code: e.exit_code(),
                message: e.to_string(),
                hint: e.hint().map(String::from),
            };
        }
        if let Some(e) = cause.downcast_ref::<ApiError>() {
            return api_report(e);
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e {
                ClientError::Api(api) => api_report(api),
                ClientError::Connect { .. } | ClientError::Io(_) => Report {
                    code: EXIT_UNREACHABLE,
                    message: e.to_string(),
                    hint: Some(
                        "check `hearth daemon status`, and the daemon's log in the data directory"
                            .into(),
                    ),
                },
                _ => Report {
                    code: EXIT_INTERNAL,
                    message: e.to_string(),
                    hint: None,
                },
            };
        }
    }
    Report {
        code: EXIT_INTERNAL,
        message: format!("{err:#}"),
        hint: None,
    }
}

fn api_report(e: &ApiError) -> Report {
    Report {
        code: exit_code_of_api(e.code),
        message: e.message.clone(),
        hint: e.hint.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_their_hint_and_map_to_documented_codes() {
        let err = anyhow::Error::new(ClientError::Api(ApiError::new(
            ErrorCode::Ambiguous,
            "`ab` matches 2 items",
            "type more of the id",
        )));
        let r = report(&err);
        assert_eq!(r.code, EXIT_INVALID);
        assert_eq!(r.hint.as_deref(), Some("type more of the id"));
        assert_eq!(exit_code_of_api(ErrorCode::Locked), EXIT_LOCKED);
        assert_eq!(exit_code_of_api(ErrorCode::WrongPassphrase), EXIT_LOCKED);
        assert_eq!(exit_code_of_api(ErrorCode::Storage), EXIT_STORAGE);
        assert_eq!(exit_code_of_api(ErrorCode::Internal), EXIT_INTERNAL);
    }

    #[test]
    fn context_does_not_hide_the_cause() {
        let err = anyhow::Error::new(CliError::Unreachable {
            message: "hearthd is not running".into(),
            hint: "hearth daemon start".into(),
        })
        .context("while saving");
        assert_eq!(report(&err).code, EXIT_UNREACHABLE);
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("write");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
