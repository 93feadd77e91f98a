//! Writing an index: one shard at a time into a `.partial` folder, renamed into place at the end.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use libsais::suffix_array::AlphabetSize;
use libsais::{SuffixArrayConstruction, ThreadCount};
use serde::{Deserialize, Serialize};

use super::format::{FileSum, Header, ShardMeta, FORMAT_VERSION, MAGIC};
use crate::alphabet::{Alphabet, SEPARATOR};
use crate::error::{Error, Result};
use crate::ragged::Ragged;

/// Marks a folder as ours to delete when a build is abandoned or restarted.
const PARTIAL_MARKER: &str = ".memscan-partial";

/// Builds an index directory shard by shard.
///
/// Everything is written to `<dir>.partial/`; [`IndexWriter::finish`] writes the header
/// and renames the folder to `<dir>`, so a reader never sees a half-built index. A
/// writer dropped without `finish` removes its partial folder.
pub struct IndexWriter {
    final_dir: PathBuf,
    work_dir: PathBuf,
    shards: Vec<ShardMeta>,
    files: BTreeMap<String, FileSum>,
    finished: bool,
}

impl IndexWriter {
    /// Starts a build of `dir`. Refuses an existing `dir` unless `overwrite`.
    pub fn create(dir: &Path, overwrite: bool) -> Result<Self> {
        if dir.exists() && !overwrite {
            return Err(Error::invalid(format!("{} already exists (pass overwrite to replace it)", dir.display())));
        }
        let work_dir = sibling(dir, "partial");
        if work_dir.exists() {
            if !work_dir.join(PARTIAL_MARKER).exists() {
                return Err(Error::invalid(format!(
                    "{} exists and is not an abandoned memscan build; move it away",
                    work_dir.display()
                )));
            }
            fs::remove_dir_all(&work_dir).map_err(|e| Error::io(&work_dir, e))?;
        }
        fs::create_dir_all(&work_dir).map_err(|e| Error::io(&work_dir, e))?;
        fs::write(work_dir.join(PARTIAL_MARKER), b"").map_err(|e| Error::io(&work_dir, e))?;
        Ok(Self { final_dir: dir.to_path_buf(), work_dir, shards: Vec::new(), files: BTreeMap::new(), finished: false })
    }

    /// The folder being written; callers may add their own files there (see [`Self::add_file`]).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub fn n_documents(&self) -> u64 {
        self.shards.iter().map(|s| s.n_documents).sum()
    }

    /// Indexes one batch of documents as a new shard. `threads` bounds the suffix sorter (None: all cores).
    pub fn add_shard(&mut self, docs: Ragged<'_>, threads: Option<usize>) -> Result<()> {
        let name = format!("shard-{:05}", self.shards.len());
        let piece = write_shard(&self.work_dir.join(&name), docs, threads)?;
        self.adopt_shard(&name, &piece)
    }

    /// Appends a shard that [`write_shard`] wrote into `work_dir/<name>` (possibly on
    /// another machine sharing the filesystem): its documents follow those already added.
    /// The files must be there with the sizes the piece lists.
    pub fn adopt_shard(&mut self, name: &str, piece: &ShardPiece) -> Result<()> {
        let relative = Path::new(name);
        if name.is_empty()
            || relative.is_absolute()
            || relative.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::invalid(format!("shard folder {name:?} is not a plain path inside the index")));
        }
        if self.shards.iter().any(|s| s.dir == name) {
            return Err(Error::invalid(format!("shard folder {name:?} is already part of the index")));
        }
        let meta = ShardMeta {
            dir: name.to_string(),
            first_document: self.n_documents(),
            n_documents: piece.n_documents,
            n_tokens: piece.n_tokens,
            vocab_size: piece.vocab_size,
            token_width: ShardMeta::width_for(piece.vocab_size),
        };
        let mut files = Vec::new();
        for (file, bytes) in meta.file_sizes() {
            let sum = piece.files.get(file).ok_or_else(|| Error::invalid(format!("shard {name} lacks {file}")))?;
            let path = self.work_dir.join(name).join(file);
            let actual = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
            if sum.bytes != bytes || actual != bytes {
                return Err(Error::invalid(format!(
                    "{}: {actual} bytes on disk, {} listed, {bytes} expected from the shard's counts",
                    path.display(),
                    sum.bytes
                )));
            }
            files.push((format!("{name}/{file}"), sum.clone()));
        }
        self.files.extend(files);
        self.shards.push(meta);
        Ok(())
    }

    /// Records the size and checksum of a file the caller wrote into [`Self::work_dir`].
    pub fn add_file(&mut self, rel: &str) -> Result<()> {
        let path = self.work_dir.join(rel);
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        self.files.insert(rel.to_string(), FileSum::of(&bytes));
        Ok(())
    }

    /// Writes the header, with the caller's `metadata_json` (a JSON value, e.g. the
    /// tokenizer identity) stored under "metadata", and moves the finished index into place.
    pub fn finish(mut self, metadata_json: &str) -> Result<Header> {
        let metadata: serde_json::Value = serde_json::from_str(metadata_json)
            .map_err(|e| Error::invalid(format!("index metadata is not valid JSON: {e}")))?;
        // add_shard refuses shards without tokens, so only "no shard at all" is left to catch.
        if self.shards.is_empty() {
            return Err(Error::invalid("the corpus is empty: no tokens to index"));
        }
        let header = Header {
            magic: MAGIC.to_string(),
            format_version: FORMAT_VERSION,
            byte_order: "little".to_string(),
            n_documents: self.n_documents(),
            n_tokens: self.shards.iter().map(|s| s.n_tokens).sum(),
            shards: self.shards.clone(),
            files: self.files.clone(),
            metadata,
        };
        header.write(&self.work_dir)?;
        let marker = self.work_dir.join(PARTIAL_MARKER);
        fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        if self.final_dir.exists() {
            // Only reachable with overwrite: move the old index aside first so that a
            // failure between the two renames never loses both.
            let old = sibling(&self.final_dir, "replaced");
            fs::rename(&self.final_dir, &old).map_err(|e| Error::io(&self.final_dir, e))?;
            fs::rename(&self.work_dir, &self.final_dir).map_err(|e| Error::io(&self.work_dir, e))?;
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        } else {
            fs::rename(&self.work_dir, &self.final_dir).map_err(|e| Error::io(&self.work_dir, e))?;
        }
        self.finished = true;
        Ok(header)
    }
}

impl Drop for IndexWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "index".into());
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// What [`write_shard`] wrote: the shard's counts and the size and checksum of each file
/// (by file name), everything [`IndexWriter::adopt_shard`] needs to list it in the header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardPiece {
    pub n_documents: u64,
    pub n_tokens: u64,
    pub vocab_size: u64,
    pub files: BTreeMap<String, FileSum>,
}

impl ShardPiece {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a shard piece always serializes")
    }

    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("not a shard description: {e}")))
    }
}

/// Builds one shard of `docs` and writes its four files into the new folder `dir`.
/// Shards are independent of each other, so separate processes or machines may write
/// the shards of one index (see [`IndexWriter::adopt_shard`]).
pub fn write_shard(dir: &Path, docs: Ragged<'_>, threads: Option<usize>) -> Result<ShardPiece> {
    let built = build_shard(docs, threads)?;
    let vocab_size = built.vocab.len() as u64;
    let narrow: Vec<u16>;
    let stream: &[u8] = if ShardMeta::width_for(vocab_size) == 2 {
        narrow = built.stream.iter().map(|&r| r as u16).collect();
        bytemuck::cast_slice(&narrow)
    } else {
        bytemuck::cast_slice(&built.stream)
    };
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = BTreeMap::new();
    for (file, bytes) in [
        (ShardMeta::tokens_file_for(vocab_size), stream),
        ("sa.u32", bytemuck::cast_slice(&built.suffix_array)),
        ("docs.u64", bytemuck::cast_slice(&built.starts)),
        ("vocab.u32", bytemuck::cast_slice(&built.vocab)),
    ] {
        let path = dir.join(file);
        fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        files.insert(file.to_string(), FileSum::of(bytes));
    }
    Ok(ShardPiece { n_documents: docs.len() as u64, n_tokens: docs.tokens().len() as u64, vocab_size, files })
}

/// The four arrays of one shard, ready to write.
pub(crate) struct BuiltShard {
    pub stream: Vec<i32>,
    pub suffix_array: Vec<u32>,
    pub starts: Vec<u64>,
    pub vocab: Vec<u32>,
}

/// Ranks the tokens, lays documents out with a separator after each, and sorts the suffixes.
pub(crate) fn build_shard(docs: Ragged<'_>, threads: Option<usize>) -> Result<BuiltShard> {
    if docs.tokens().is_empty() {
        return Err(Error::invalid("the corpus is empty: no tokens to index"));
    }
    let stream_len = docs.tokens().len() + docs.len();
    if stream_len >= i32::MAX as usize {
        return Err(Error::invalid(format!(
            "a shard holds fewer than 2^31 tokens plus documents, this one {stream_len}: use smaller shards"
        )));
    }
    let alphabet = Alphabet::of(docs.tokens());
    let rank = alphabet.ranker();
    let mut stream: Vec<i32> = Vec::with_capacity(stream_len);
    let mut starts: Vec<u64> = Vec::with_capacity(docs.len() + 1);
    for doc in docs.iter() {
        starts.push(stream.len() as u64);
        stream.extend(doc.iter().map(|&t| rank(t) as i32));
        stream.push(SEPARATOR as i32);
    }
    starts.push(stream.len() as u64);

    let thread_count = match threads {
        None => ThreadCount::openmp_default(),
        Some(n) => ThreadCount::fixed(n.clamp(1, u16::MAX as usize) as u16),
    };
    let construction =
        SuffixArrayConstruction::for_text_mut(&mut stream).in_owned_buffer32().multi_threaded(thread_count);
    // SAFETY: every value of `stream` lies in 0..=V (ranks are 1..=V, separators 0),
    // so V + 1 is a correct alphabet size.
    let construction = unsafe { construction.with_alphabet_size(AlphabetSize::new(alphabet.len() as i32 + 1)) };
    let sorted = construction.run().map_err(|e| Error::invalid(format!("suffix sorting failed: {e:?}")))?;
    let mut suffix_array = sorted.into_vec();
    suffix_array.retain(|&p| stream[p as usize] != SEPARATOR as i32);
    let suffix_array: Vec<u32> = bytemuck::allocation::cast_vec(suffix_array);

    Ok(BuiltShard { stream, suffix_array, starts, vocab: alphabet.vocab().to_vec() })
}
