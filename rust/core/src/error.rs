use std::path::{Path, PathBuf};

/// Every failure the core reports. The Python layer maps `Invalid` to `ValueError`,
/// `Corrupt` to `memscan.IndexCorruptError` and `Io` to `OSError`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller passed something unusable (empty n-gram, ragged offsets that do not add up, ...).
    #[error("{0}")]
    Invalid(String),
    /// An index directory that is not one, is truncated, or fails its checksum.
    #[error("{path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
    pub fn corrupt(path: &Path, msg: impl Into<String>) -> Self {
        Error::Corrupt { path: path.to_path_buf(), msg: msg.into() }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}
