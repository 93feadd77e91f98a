//! memscan-core: the token-level engine behind `memscan._core`.
//!
//! Plain Rust with no Python in it. Two halves:
//! - [`index`]: a suffix-array index over a corpus of `u32` token documents
//!   (build in shards, save, memory-map, count / locate / matching statistics);
//! - [`pairs`]: scores for many (generation, reference) pairs at once, including
//!   the n-gram overlap behind extraction likelihood EL_n.
//!
//! Batch entry points take [`Ragged`] token batches and run on the current rayon
//! pool; callers choose the pool (see [`with_threads`]).

pub mod alphabet;
pub mod error;
pub mod index;
pub mod pairs;
pub mod ragged;

pub use error::{Error, Result};
pub use ragged::Ragged;

/// Run `work` on a rayon pool of `threads` workers, or on the global pool when `None`.
pub fn with_threads<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        None => Ok(work()),
        Some(0) => Err(Error::invalid("threads must be at least 1")),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?;
            Ok(pool.install(work))
        }
    }
}
