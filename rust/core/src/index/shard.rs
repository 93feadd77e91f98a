//! Queries on one memory-mapped shard.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use super::format::ShardMeta;
use super::Occurrence;
use crate::alphabet::{Alphabet, SEPARATOR};
use crate::error::{Error, Result};

/// Suffix-array entries checked on opening (evenly spaced), and tokens compared per pair.
const SUFFIX_SAMPLE: usize = 4096;
const SUFFIX_COMPARE: usize = 64;

/// A stored token rank: u16 in shards whose alphabet fits, u32 otherwise.
pub(crate) trait Rank: bytemuck::Pod + Into<u32> + Send + Sync {}
impl Rank for u16 {}
impl Rank for u32 {}

pub(crate) struct Shard<T: Rank> {
    rank: std::marker::PhantomData<T>,
    tokens: Mmap,
    sa: Mmap,
    docs: Mmap,
    vocab: Mmap,
    first_document: u64,
    n_documents: u64,
}

/// Where a pattern would be inserted in the suffix array, and its common-prefix
/// lengths with the suffixes on either side (0 where there is none).
struct Boundary {
    slot: usize,
    lcp_below: usize,
    lcp_above: usize,
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: read-only map; index files are never modified after the build renames them into place.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(map)
}

impl<T: Rank> Shard<T> {
    pub fn open(dir: &Path, meta: &ShardMeta) -> Result<Self> {
        let shard = Self {
            rank: std::marker::PhantomData,
            tokens: map_file(&dir.join(meta.tokens_file()))?,
            sa: map_file(&dir.join("sa.u32"))?,
            docs: map_file(&dir.join("docs.u64"))?,
            vocab: map_file(&dir.join("vocab.u32"))?,
            first_document: meta.first_document,
            n_documents: meta.n_documents,
        };
        shard.check_structure().map_err(|msg| Error::corrupt(dir, msg))?;
        Ok(shard)
    }

    /// The checks that make every later query memory-safe and panic-free, cheap enough to
    /// run on every opening (the checksums, which read every byte, are optional): the
    /// document table starts at 0, increases, ends at the stream's end and every document
    /// ends with a separator; the vocabulary is strictly increasing; and on an even sample
    /// of the suffix array, entries point at a token inside the stream and adjacent
    /// suffixes are in order.
    fn check_structure(&self) -> std::result::Result<(), String> {
        let (tokens, sa, docs, vocab) = (self.tokens(), self.sa(), self.docs(), self.alphabet());
        if docs.first() != Some(&0) {
            return Err("the document table does not start at 0".into());
        }
        if docs.last().copied() != Some(tokens.len() as u64) {
            return Err("the document table does not end at the token stream's end".into());
        }
        if let Some(i) = docs
            .windows(2)
            .position(|w| w[1] <= w[0] || tokens.get(w[1] as usize - 1).map(|&r| r.into()) != Some(SEPARATOR))
        {
            return Err(format!("document {i} has a broken extent in the document table"));
        }
        if vocab.vocab().windows(2).any(|w| w[1] <= w[0]) {
            return Err("the vocabulary is not strictly increasing".into());
        }
        let step = (sa.len() / SUFFIX_SAMPLE).max(1);
        for i in (0..sa.len()).step_by(step) {
            let pos = sa[i] as usize;
            if tokens.get(pos).map(|&r| r.into()).is_none_or(|r: u32| r == SEPARATOR || r as usize > vocab.len()) {
                return Err(format!("suffix array entry {i} does not point at a token"));
            }
            if let Some(&next) = sa.get(i + 1) {
                let window = |p: usize| {
                    tokens[p.min(tokens.len())..(p + SUFFIX_COMPARE).min(tokens.len())].iter().map(|&r| r.into())
                };
                if window(pos).cmp(window(next as usize)) == std::cmp::Ordering::Greater {
                    return Err(format!("suffix array entries {i} and {} are out of order", i + 1));
                }
            }
        }
        Ok(())
    }

    fn tokens(&self) -> &[T] {
        bytemuck::cast_slice(&self.tokens)
    }

    fn sa(&self) -> &[u32] {
        bytemuck::cast_slice(&self.sa)
    }

    fn docs(&self) -> &[u64] {
        bytemuck::cast_slice(&self.docs)
    }

    fn alphabet(&self) -> Alphabet<'_> {
        Alphabet::from_sorted(bytemuck::cast_slice(&self.vocab))
    }

    pub fn map_query(&self, query: &[u32]) -> Vec<u32> {
        self.alphabet().map_query(query)
    }

    pub fn holds_document(&self, doc: u64) -> bool {
        (self.first_document..self.first_document + self.n_documents).contains(&doc)
    }

    /// Token ids of a document this shard holds (a rank outside the vocabulary: a damaged shard).
    pub fn document(&self, doc: u64) -> Option<Vec<u32>> {
        let local = (doc - self.first_document) as usize;
        let (a, b) = (self.docs()[local] as usize, self.docs()[local + 1] as usize - 1);
        let alphabet = self.alphabet();
        self.tokens()[a..b].iter().map(|&r| alphabet.get(r.into())).collect()
    }

    /// Token count of every document this shard holds, in order.
    pub fn document_lengths(&self) -> impl Iterator<Item = u64> + '_ {
        self.docs().windows(2).map(|w| w[1] - w[0] - 1)
    }

    /// Token ids `start..start + length` of a document this shard holds (None when the
    /// window leaves the document or meets a rank outside the vocabulary).
    pub fn window(&self, doc: u64, start: u64, length: u64) -> Option<Vec<u32>> {
        let local = (doc - self.first_document) as usize;
        let (a, b) = (self.docs()[local], self.docs()[local + 1] - 1);
        let end = start.checked_add(length)?;
        if end > b - a {
            return None;
        }
        let alphabet = self.alphabet();
        self.tokens()[(a + start) as usize..(a + end) as usize].iter().map(|&r| alphabet.get(r.into())).collect()
    }

    /// Common-prefix length of the suffix at `pos` and `pat`, the first `known` tokens being known equal.
    /// Stops at a document's separator, since a mapped pattern never contains 0.
    #[inline]
    fn lcp_at(&self, pos: usize, pat: &[u32], known: usize) -> usize {
        let text = self.tokens();
        let mut l = known;
        while l < pat.len() && text.get(pos + l).map(|&r| r.into()) == Some(pat[l]) {
            l += 1;
        }
        l
    }

    /// Binary search for `pat`; a suffix that starts with `pat` counts as before it when
    /// `prefix_is_before` (upper bound) and after it otherwise (lower bound). Skips the
    /// prefix shared by both current bounds (Manber and Myers' mlr heuristic).
    fn search(&self, pat: &[u32], prefix_is_before: bool) -> Boundary {
        let (sa, text) = (self.sa(), self.tokens());
        let (mut lo, mut hi) = (0usize, sa.len());
        let (mut lcp_below, mut lcp_above) = (0usize, 0usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let pos = sa[mid] as usize;
            let l = self.lcp_at(pos, pat, lcp_below.min(lcp_above));
            let before =
                if l == pat.len() { prefix_is_before } else { text.get(pos + l).is_none_or(|&t| t.into() < pat[l]) };
            if before {
                lo = mid + 1;
                lcp_below = l;
            } else {
                hi = mid;
                lcp_above = l;
            }
        }
        Boundary { slot: lo, lcp_below, lcp_above }
    }

    fn range(&self, pat: &[u32]) -> std::ops::Range<usize> {
        self.search(pat, false).slot..self.search(pat, true).slot
    }

    pub fn count(&self, pat: &[u32]) -> u64 {
        self.range(pat).len() as u64
    }

    pub fn locate(&self, pat: &[u32], limit: usize) -> Vec<Occurrence> {
        let range = self.range(pat);
        let end = range.end.min(range.start.saturating_add(limit));
        self.sa()[range.start..end].iter().map(|&p| self.occurrence(p as usize)).collect()
    }

    /// Longest prefix of `pat` that occurs in the shard, and the document holding it.
    /// The longest match always sits next to the pattern's insertion point.
    pub fn longest_match(&self, pat: &[u32]) -> (u32, u64) {
        if pat.is_empty() || pat[0] == crate::alphabet::ABSENT {
            return (0, 0);
        }
        let b = self.search(pat, false);
        let (length, slot) =
            if b.lcp_below >= b.lcp_above { (b.lcp_below, b.slot.wrapping_sub(1)) } else { (b.lcp_above, b.slot) };
        if length == 0 {
            return (0, 0);
        }
        (length as u32, self.occurrence(self.sa()[slot] as usize).doc)
    }

    fn occurrence(&self, pos: usize) -> Occurrence {
        let docs = self.docs();
        let local = docs.partition_point(|&start| start <= pos as u64) - 1;
        Occurrence { doc: self.first_document + local as u64, offset: pos as u64 - docs[local] }
    }
}

/// A shard of either token width; a query dispatches once per call, not per token.
pub(crate) enum AnyShard {
    Narrow(Shard<u16>),
    Wide(Shard<u32>),
}

macro_rules! on_shard {
    ($shard:expr, $s:ident => $body:expr) => {
        match $shard {
            AnyShard::Narrow($s) => $body,
            AnyShard::Wide($s) => $body,
        }
    };
}

impl AnyShard {
    pub fn open(dir: &Path, meta: &ShardMeta) -> Result<Self> {
        Ok(if meta.token_width == 2 {
            Self::Narrow(Shard::open(dir, meta)?)
        } else {
            Self::Wide(Shard::open(dir, meta)?)
        })
    }

    pub fn map_query(&self, query: &[u32]) -> Vec<u32> {
        on_shard!(self, s => s.map_query(query))
    }

    pub fn holds_document(&self, doc: u64) -> bool {
        on_shard!(self, s => s.holds_document(doc))
    }

    pub fn document(&self, doc: u64) -> Option<Vec<u32>> {
        on_shard!(self, s => s.document(doc))
    }

    pub fn document_lengths(&self) -> Vec<u64> {
        on_shard!(self, s => s.document_lengths().collect())
    }

    pub fn window(&self, doc: u64, start: u64, length: u64) -> Option<Vec<u32>> {
        on_shard!(self, s => s.window(doc, start, length))
    }

    pub fn count(&self, pat: &[u32]) -> u64 {
        on_shard!(self, s => s.count(pat))
    }

    pub fn locate(&self, pat: &[u32], limit: usize) -> Vec<Occurrence> {
        on_shard!(self, s => s.locate(pat, limit))
    }

    pub fn longest_match(&self, pat: &[u32]) -> (u32, u64) {
        on_shard!(self, s => s.longest_match(pat))
    }
}
