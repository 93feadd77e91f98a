//! Suffix-array index over a corpus of token documents.
//!
//! # On-disk format (version 2)
//!
//! A directory holding `memscan-index.json` (the [`Header`]: magic, format version,
//! byte order, counts, each shard's token width, the caller's metadata such as the
//! tokenizer identity, and the size and XXH3-64 checksum of every other file) and one
//! folder per shard with four little-endian arrays:
//!
//! | file | type | entries | holds |
//! |---|---|---|---|
//! | `tokens.u16` / `tokens.u32` | u16 / u32 | tokens + documents | every token as its rank in the shard's vocabulary (1..=V), a 0 after each document; u16 when V <= 65 535 |
//! | `sa.u32` | u32 | tokens | the suffix array, restricted to suffixes that start on a token |
//! | `docs.u64` | u64 | documents + 1 | where each document starts in the token stream; the last entry is its length |
//! | `vocab.u32` | u32 | V | the shard's distinct token ids, sorted |
//!
//! That is 6 bytes per token (8 in a shard of more than 65 535 distinct ids), plus
//! 10 or 12 bytes per document and 4 per distinct id.
//! A shard holds fewer than 2^31 tokens-plus-documents; larger corpora are
//! written as several shards and every query fans out over them and merges.

mod build;
mod format;
mod shard;

pub use build::{write_shard, IndexWriter, ShardPiece};
pub use format::{FileSum, Header, ShardMeta, FORMAT_VERSION, HEADER_FILE, MAGIC};

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::ragged::Ragged;
use shard::AnyShard;

/// Where an n-gram occurs: document number (over the whole index) and token offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Occurrence {
    pub doc: u64,
    pub offset: u64,
}

/// Matching statistics of a batch of queries, flat and aligned with the query tokens:
/// `lengths[j]` is the longest span starting at query token `j` that occurs in the
/// corpus, `docs[j]` one document holding it (-1 where the length is 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatchingStatistics {
    pub lengths: Vec<u32>,
    pub docs: Vec<i64>,
}

/// A stretch of a query that occurs in the corpus: `length` tokens from `start` of query `query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub query: u64,
    pub start: u64,
    pub length: u64,
    pub doc: i64,
}

/// A memory-mapped index, opened read-only.
pub struct CorpusIndex {
    dir: PathBuf,
    header: Header,
    shards: Vec<AnyShard>,
}

impl CorpusIndex {
    /// Opens `dir` by memory-mapping its shards. Checks the header and every file's
    /// size; with `verify` it also reads every file and checks its checksum.
    pub fn open(dir: &Path, verify: bool) -> Result<Self> {
        Self::open_shards(dir, verify, None)
    }

    /// Opens only the shards numbered in `shards` (all when None): a worker that serves
    /// part of a large index maps only its part. Queries then answer for those shards
    /// alone, with document numbers still counted over the whole index.
    pub fn open_shards(dir: &Path, verify: bool, shards: Option<&[usize]>) -> Result<Self> {
        let header = Header::read(dir)?;
        header.check_file_sizes(dir)?;
        if verify {
            header.verify_checksums(dir)?;
        }
        let chosen: Vec<&ShardMeta> = match shards {
            None => header.shards.iter().collect(),
            Some(numbers) => numbers
                .iter()
                .map(|&i| {
                    header.shards.get(i).ok_or_else(|| {
                        Error::invalid(format!("shard {i} is out of range (the index has {})", header.shards.len()))
                    })
                })
                .collect::<Result<_>>()?,
        };
        let shards =
            chosen.into_iter().map(|meta| AnyShard::open(&dir.join(&meta.dir), meta)).collect::<Result<Vec<_>>>()?;
        Ok(Self { dir: dir.to_path_buf(), header, shards })
    }

    /// Reads every file and checks it against its checksum in the header.
    pub fn verify(&self) -> Result<()> {
        self.header.verify_checksums(&self.dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn n_tokens(&self) -> u64 {
        self.header.n_tokens
    }

    pub fn n_documents(&self) -> u64 {
        self.header.n_documents
    }

    /// The token ids of document `doc`.
    pub fn document(&self, doc: u64) -> Result<Vec<u32>> {
        let shard = self.shards.iter().find(|s| s.holds_document(doc)).ok_or_else(|| {
            Error::invalid(format!("document {doc} is out of range (the index has {})", self.n_documents()))
        })?;
        shard.document(doc).ok_or_else(|| {
            Error::corrupt(&self.dir, format!("document {doc} holds a token outside its shard's vocabulary"))
        })
    }

    /// The token count of every document, in document order.
    pub fn document_lengths(&self) -> Vec<u64> {
        self.shards.iter().flat_map(|s| s.document_lengths()).collect()
    }

    /// Tokens `starts[i]..starts[i] + length` of document `docs[i]` for every i, flat
    /// (`length` tokens each): prompts and their true continuations, read without
    /// materialising any document. A window that leaves its document is an error.
    pub fn windows(&self, docs: &[u64], starts: &[u64], length: u64) -> Result<Vec<u32>> {
        if docs.len() != starts.len() {
            return Err(Error::invalid("docs and starts must have the same length"));
        }
        let windows = docs
            .par_iter()
            .zip(starts)
            .map(|(&doc, &start)| {
                let shard = self.shards.iter().find(|s| s.holds_document(doc)).ok_or_else(|| {
                    Error::invalid(format!("document {doc} is out of range (the index has {})", self.n_documents()))
                })?;
                shard.window(doc, start, length).ok_or_else(|| {
                    Error::invalid(format!(
                        "tokens {start}..{} are not all inside document {doc}",
                        start.saturating_add(length)
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(windows.concat())
    }

    /// How many times `ngram` occurs (never across a document boundary).
    pub fn count(&self, ngram: &[u32]) -> Result<u64> {
        check_ngram(ngram)?;
        Ok(self.shards.iter().map(|s| s.count(&s.map_query(ngram))).sum())
    }

    /// `count` for every query of a batch, in parallel.
    pub fn count_batch(&self, ngrams: Ragged<'_>) -> Result<Vec<u64>> {
        ngrams.iter().try_for_each(check_ngram)?;
        Ok((0..ngrams.len())
            .into_par_iter()
            .map(|i| self.shards.iter().map(|s| s.count(&s.map_query(ngrams.get(i)))).sum())
            .collect())
    }

    /// Up to `limit` occurrences of `ngram`, sorted by (document, offset). When there are
    /// more than `limit`, which ones are returned is unspecified.
    pub fn locate(&self, ngram: &[u32], limit: usize) -> Result<Vec<Occurrence>> {
        check_ngram(ngram)?;
        let mut found = Vec::new();
        for shard in &self.shards {
            if found.len() >= limit {
                break;
            }
            found.extend(shard.locate(&shard.map_query(ngram), limit - found.len()));
        }
        found.sort_unstable();
        Ok(found)
    }

    /// For every position of every query, the longest span starting there that occurs
    /// in the corpus, and one document holding it.
    pub fn matching_statistics(&self, queries: Ragged<'_>) -> MatchingStatistics {
        let per_query: Vec<MatchingStatistics> =
            (0..queries.len()).into_par_iter().map(|i| self.query_statistics(queries.get(i))).collect();
        let mut all = MatchingStatistics::default();
        for q in per_query {
            all.lengths.extend(q.lengths);
            all.docs.extend(q.docs);
        }
        all
    }

    fn query_statistics(&self, query: &[u32]) -> MatchingStatistics {
        let mut best = MatchingStatistics { lengths: vec![0; query.len()], docs: vec![-1; query.len()] };
        for shard in &self.shards {
            let matches = shard.longest_matches(&shard.map_query(query));
            for (j, (length, doc)) in matches.into_iter().enumerate() {
                if length > best.lengths[j] {
                    best.lengths[j] = length;
                    best.docs[j] = doc as i64;
                }
            }
        }
        best
    }

    /// Share of each query's tokens that lie inside a corpus span of at least `k` tokens
    /// (0 for an empty query).
    pub fn coverage(&self, queries: Ragged<'_>, k: u32) -> Result<Vec<f64>> {
        let ms = self.matching_statistics(queries);
        coverage_batch(Ragged::new(&ms.lengths, queries.offsets())?, k)
    }

    /// The maximal corpus spans of at least `k` tokens in each query (see [`spans_batch`]).
    pub fn attribute(&self, queries: Ragged<'_>, k: u32) -> Result<Vec<Span>> {
        let ms = self.matching_statistics(queries);
        spans_batch(Ragged::new(&ms.lengths, queries.offsets())?, &ms.docs, k)
    }
}

/// [`coverage_of`] for each query's matching-statistics lengths, in parallel.
pub fn coverage_batch(lengths: Ragged<'_>, k: u32) -> Result<Vec<f64>> {
    check_k(k)?;
    Ok((0..lengths.len()).into_par_iter().map(|i| coverage_of(lengths.get(i), k)).collect())
}

/// The maximal spans of at least `k` tokens of each query, from its matching statistics
/// (`docs` aligned with the flat lengths). A span is reported where it starts unless an
/// earlier span of the same query already reaches as far.
pub fn spans_batch(lengths: Ragged<'_>, docs: &[i64], k: u32) -> Result<Vec<Span>> {
    check_k(k)?;
    if docs.len() != lengths.tokens().len() {
        return Err(Error::invalid("docs must be aligned with lengths"));
    }
    let mut spans = Vec::new();
    for i in 0..lengths.len() {
        let (a, b) = (lengths.offsets()[i] as usize, lengths.offsets()[i + 1] as usize);
        spans.extend(spans_of(lengths.get(i), &docs[a..b], k).map(|(start, length, doc)| Span {
            query: i as u64,
            start,
            length,
            doc,
        }));
    }
    Ok(spans)
}

fn check_ngram(ngram: &[u32]) -> Result<()> {
    if ngram.is_empty() {
        return Err(Error::invalid("the n-gram is empty"));
    }
    Ok(())
}

fn check_k(k: u32) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    Ok(())
}

/// Share of positions covered by a span `[j, j + lengths[j])` with `lengths[j] >= k`.
pub fn coverage_of(lengths: &[u32], k: u32) -> f64 {
    if lengths.is_empty() {
        return 0.0;
    }
    let mut covered = 0usize;
    let mut reach = 0usize; // first position not yet covered by a long span
    for (j, &len) in lengths.iter().enumerate() {
        if len >= k {
            reach = reach.max(j + len as usize);
        }
        if j < reach {
            covered += 1;
        }
    }
    covered as f64 / lengths.len() as f64
}

/// Maximal spans (start, length, doc) of at least `k` tokens from matching statistics.
pub fn spans_of<'a>(lengths: &'a [u32], docs: &'a [i64], k: u32) -> impl Iterator<Item = (u64, u64, i64)> + 'a {
    let mut reach = 0usize;
    lengths.iter().enumerate().filter_map(move |(j, &len)| {
        let end = j + len as usize;
        if len >= k && end > reach {
            reach = end;
            Some((j as u64, len as u64, docs[j]))
        } else {
            None
        }
    })
}
