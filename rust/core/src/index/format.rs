//! The index header: what `memscan-index.json` holds, and the checks made on opening.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MAGIC: &str = "memscan-index";
/// Version 2 stores each shard's tokens in 2 bytes where its alphabet fits (version 1: always 4).
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER_FILE: &str = "memscan-index.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub magic: String,
    pub format_version: u32,
    pub byte_order: String,
    pub n_documents: u64,
    pub n_tokens: u64,
    pub shards: Vec<ShardMeta>,
    /// Size and checksum of every file in the directory but the header, by relative path.
    pub files: BTreeMap<String, FileSum>,
    /// The caller's own description (memscan's Python layer stores the tokenizer identity here).
    pub metadata: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardMeta {
    pub dir: String,
    pub first_document: u64,
    pub n_documents: u64,
    pub n_tokens: u64,
    pub vocab_size: u64,
    /// Bytes per stored token rank: 2 when the ranks 0..=vocab_size fit in u16, else 4.
    pub token_width: u32,
}

impl ShardMeta {
    /// The token width a shard of `vocab_size` distinct ids is stored with.
    pub fn width_for(vocab_size: u64) -> u32 {
        if vocab_size <= u16::MAX as u64 {
            2
        } else {
            4
        }
    }

    /// The file holding the shard's token stream.
    pub fn tokens_file(&self) -> &'static str {
        Self::tokens_file_for(self.vocab_size)
    }

    /// The token-stream file of a shard of `vocab_size` distinct ids.
    pub fn tokens_file_for(vocab_size: u64) -> &'static str {
        if Self::width_for(vocab_size) == 2 {
            "tokens.u16"
        } else {
            "tokens.u32"
        }
    }

    /// Each of the shard's four files with the byte count its counts imply.
    pub fn file_sizes(&self) -> [(&'static str, u64); 4] {
        let stream = self.n_tokens + self.n_documents;
        [
            (self.tokens_file(), stream * self.token_width as u64),
            ("sa.u32", self.n_tokens * 4),
            ("docs.u64", (self.n_documents + 1) * 8),
            ("vocab.u32", self.vocab_size * 4),
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileSum {
    pub bytes: u64,
    /// XXH3-64 of the file's bytes, as 16 hex digits.
    pub xxh3: String,
}

impl FileSum {
    pub fn of(bytes: &[u8]) -> Self {
        Self { bytes: bytes.len() as u64, xxh3: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)) }
    }
}

impl Header {
    pub fn read(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::corrupt(dir, "not a directory"));
        }
        let path = dir.join(HEADER_FILE);
        let text = fs::read_to_string(&path)
            .map_err(|_| Error::corrupt(dir, format!("not a memscan index (no readable {HEADER_FILE})")))?;
        let unreadable = |e: serde_json::Error| Error::corrupt(&path, format!("unreadable index header: {e}"));
        // Magic and version first, so an index of another version gets that message, not a field error.
        let value: serde_json::Value = serde_json::from_str(&text).map_err(unreadable)?;
        if value.get("magic").and_then(|m| m.as_str()) != Some(MAGIC) {
            return Err(Error::corrupt(&path, "not a memscan index header (no memscan-index magic)"));
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            other => {
                return Err(Error::corrupt(
                    &path,
                    format!(
                        "index format version {} is not supported (this memscan reads version {FORMAT_VERSION}); rebuild the index",
                        other.map_or("?".to_string(), |v| v.to_string())
                    ),
                ))
            }
        }
        let header: Header = serde_json::from_value(value).map_err(unreadable)?;
        if header.byte_order != "little"
            || header.shards.iter().any(|s| s.token_width != ShardMeta::width_for(s.vocab_size))
        {
            return Err(Error::corrupt(&path, "unsupported token width or byte order"));
        }
        if cfg!(target_endian = "big") {
            return Err(Error::corrupt(&path, "indexes are little-endian and this machine is big-endian"));
        }
        header.check_consistency(&path)?;
        Ok(header)
    }

    /// The counts in the header must agree with each other and with the file sizes they imply.
    fn check_consistency(&self, path: &Path) -> Result<()> {
        let mut next_doc = 0u64;
        let mut tokens = 0u64;
        for shard in &self.shards {
            if shard.first_document != next_doc {
                return Err(Error::corrupt(path, format!("shard {} does not follow the one before it", shard.dir)));
            }
            next_doc += shard.n_documents;
            tokens += shard.n_tokens;
            for (name, bytes) in shard.file_sizes() {
                let rel = format!("{}/{name}", shard.dir);
                match self.files.get(&rel) {
                    Some(sum) if sum.bytes == bytes => {}
                    Some(sum) => {
                        return Err(Error::corrupt(
                            path,
                            format!("{rel} should hold {bytes} bytes, header lists {}", sum.bytes),
                        ))
                    }
                    None => return Err(Error::corrupt(path, format!("header does not list {rel}"))),
                }
            }
        }
        if next_doc != self.n_documents || tokens != self.n_tokens {
            return Err(Error::corrupt(path, "shard counts do not add up to the index totals"));
        }
        Ok(())
    }

    /// Every listed file exists with the listed size (catches truncation without reading data).
    pub fn check_file_sizes(&self, dir: &Path) -> Result<()> {
        for (rel, sum) in &self.files {
            let path = dir.join(rel);
            let actual = fs::metadata(&path).map_err(|_| Error::corrupt(dir, format!("missing file {rel}")))?.len();
            if actual != sum.bytes {
                return Err(Error::corrupt(
                    &path,
                    format!("truncated or altered: {actual} bytes, expected {}", sum.bytes),
                ));
            }
        }
        Ok(())
    }

    /// Reads every listed file and compares its checksum.
    pub fn verify_checksums(&self, dir: &Path) -> Result<()> {
        self.files.par_iter().try_for_each(|(rel, sum)| {
            let path = dir.join(rel);
            let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
            let actual = if sum.bytes == 0 {
                FileSum::of(&[])
            } else {
                // SAFETY: read-only map of a file we do not modify; the index is immutable once written.
                let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
                FileSum::of(&map)
            };
            if actual != *sum {
                return Err(Error::corrupt(&path, "checksum mismatch: the file was altered or damaged"));
            }
            Ok(())
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a header always serializes")
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(HEADER_FILE);
        fs::write(&path, self.to_json()).map_err(|e| Error::io(&path, e))
    }
}
