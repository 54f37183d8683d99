//! One error type for the whole core; the binding layer maps it to Python exceptions.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum CoreError {
    /// An argument is invalid; `arg` names it as the user spelled it.
    InvalidArgument { arg: &'static str, message: String },
    /// The caller's interrupt check asked to stop (Ctrl-C).
    Interrupted,
    /// A buffer whose size the arguments set cannot be allocated (`crate::memory`): `arg` names
    /// the argument, `what` the buffer, `bytes` its size (None: more than fits in a `usize`),
    /// `available` the memory the system reported available when the request was refused for
    /// exceeding it (None: the allocator refused it), and `hint` a way out.
    OutOfMemory {
        arg: &'static str,
        what: String,
        bytes: Option<usize>,
        available: Option<u64>,
        hint: String,
    },
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
            CoreError::OutOfMemory {
                arg,
                what,
                bytes,
                available,
                hint,
            } => {
                let size = match bytes {
                    Some(b) => crate::memory::human(*b as u128),
                    None => "more than 2^64 bytes".to_string(),
                };
                write!(f, "{arg}: {what} would take {size} of memory")?;
                match available {
                    Some(a) => write!(f, ", more than the {} available", crate::memory::human(*a as u128))?,
                    None => write!(f, ", which could not be allocated")?,
                }
                write!(f, "; {hint}")
            }
            CoreError::Internal(msg) => write!(f, "internal error in repcompress (please report): {msg}"),
        }
    }
}

impl std::error::Error for CoreError {}

pub type Result<T> = std::result::Result<T, CoreError>;
