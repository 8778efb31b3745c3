//! Errors that stop an audit before any rule runs: the input cannot be read as an ELF file.

use std::fmt;
use std::path::PathBuf;

/// Why a file could not be audited at all.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Io {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not an ELF file.
    NotElf(String),
    /// An ELF file whose headers are inconsistent or truncated.
    Malformed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read `{}`: {source}", path.display()),
            Error::NotElf(why) => write!(f, "not an ELF file ({why})"),
            Error::Malformed(why) => write!(f, "malformed ELF file: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
