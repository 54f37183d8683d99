//! One error type for the whole core; the binding layer maps it to Python exceptions.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An argument is invalid; `arg` names it as the user spelled it.
    InvalidArgument { arg: &'static str, message: String },
    /// The caller's interrupt check asked to stop (Ctrl-C).
    Interrupted,
    /// A bug: an internal invariant failed (a caught panic, for instance).
    Internal(String),
}

impl CoreError {
    pub fn invalid(arg: &'static str, message: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            arg,
            message: message.into(),
        }
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidArgument { arg, message } => write!(f, "{arg}: {message}"),
            CoreError::Interrupted => write!(f, "interrupted"),
            CoreError::Internal(msg) => write!(f, "internal error in repcompress (please report): {msg}"),
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;
