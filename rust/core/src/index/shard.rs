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
    /// Per `BUCKET`-token stretch of the stream, the document holding its first token.
    doc_buckets: Vec<u32>,
}

/// Tokens per stretch of `Shard::doc_buckets`. Finding the document that holds a position
/// then searches the few documents that overlap one stretch, in a cache line or two,
/// instead of the whole table (8 MB for a billion tokens in 1 000-token documents, whose
/// binary search misses the caches at every level; it was a sixth of the time of
/// matching statistics at that size).
const BUCKET: usize = 4096;

/// Binary searches of `longest_matches` kept in flight at once. Each step of a search
/// reads a random suffix-array entry and then a random place in the token stream; on a
/// shard far larger than the CPU caches both miss, and a lone search waits out each miss
/// in turn. Steps of independent searches overlap their misses instead.
const LANES: usize = 32;

/// A binary search for a pattern's place in the suffix array: the slots still open are
/// `lo..hi`, and `lcp_below` / `lcp_above` are the pattern's common-prefix lengths with
/// the suffixes just outside them (0 where there is none). Once `lo == hi`, `lo` is where
/// the pattern would be inserted.
#[derive(Clone, Copy)]
struct Search {
    lo: usize,
    hi: usize,
    lcp_below: usize,
    lcp_above: usize,
}

impl Search {
    fn new(slots: usize) -> Self {
        Self { lo: 0, hi: slots, lcp_below: 0, lcp_above: 0 }
    }

    fn done(&self) -> bool {
        self.lo >= self.hi
    }

    fn mid(&self) -> usize {
        self.lo + (self.hi - self.lo) / 2
    }

    /// Tokens of the pattern that the suffix at `mid` is known to share (Manber and
    /// Myers' mlr heuristic: the prefix shared by both bounds).
    fn known(&self) -> usize {
        self.lcp_below.min(self.lcp_above)
    }
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: read-only map; index files are never modified after the build renames them into place.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    // A hint, ignored where unsupported: 2 MB pages where the kernel can map the file with
    // them. Queries read a large shard at random places, and with 4 kB pages nearly every
    // read also misses the TLB (matching statistics on a 1 B-token shard: 1.3x faster).
    let _ = map.advise(memmap2::Advice::HugePage);
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
            doc_buckets: Vec::new(),
        };
        shard.check_structure().map_err(|msg| Error::corrupt(dir, msg))?;
        Ok(Self { doc_buckets: shard.bucket_documents(), ..shard })
    }

    /// `doc_buckets`, in one pass over the document table (checked well-formed first).
    fn bucket_documents(&self) -> Vec<u32> {
        let (docs, n_tokens) = (self.docs(), self.tokens().len());
        let mut doc = 0;
        (0..n_tokens.div_ceil(BUCKET))
            .map(|b| {
                while docs[doc + 1] <= (b * BUCKET) as u64 {
                    doc += 1;
                }
                doc as u32
            })
            .collect()
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

    /// One step of `search` at its middle slot, whose suffix starts at `pos`; a suffix that
    /// starts with `pat` counts as before it when `prefix_is_before` (upper bound) and
    /// after it otherwise (lower bound).
    #[inline]
    fn step(&self, s: &mut Search, pat: &[u32], pos: usize, prefix_is_before: bool) {
        let l = self.lcp_at(pos, pat, s.known());
        let before = if l == pat.len() {
            prefix_is_before
        } else {
            self.tokens().get(pos + l).is_none_or(|&t| t.into() < pat[l])
        };
        if before {
            s.lo = s.mid() + 1;
            s.lcp_below = l;
        } else {
            s.hi = s.mid();
            s.lcp_above = l;
        }
    }

    fn search(&self, pat: &[u32], prefix_is_before: bool) -> Search {
        let mut s = Search::new(self.sa().len());
        while !s.done() {
            let pos = self.sa()[s.mid()] as usize;
            self.step(&mut s, pat, pos, prefix_is_before);
        }
        s
    }

    fn range(&self, pat: &[u32]) -> std::ops::Range<usize> {
        self.search(pat, false).lo..self.search(pat, true).lo
    }

    pub fn count(&self, pat: &[u32]) -> u64 {
        self.range(pat).len() as u64
    }

    pub fn locate(&self, pat: &[u32], limit: usize) -> Vec<Occurrence> {
        let range = self.range(pat);
        let end = range.end.min(range.start.saturating_add(limit));
        self.sa()[range.start..end].iter().map(|&p| self.occurrence(p as usize)).collect()
    }

    /// For every suffix `pat[j..]`, its longest prefix that occurs in the shard and the
    /// document holding it ((0, 0) where none does). The longest match always sits next to
    /// the suffix's insertion point. Runs up to `LANES` searches side by side (see there).
    pub fn longest_matches(&self, pat: &[u32]) -> Vec<(u32, u64)> {
        let (sa, text) = (self.sa(), self.tokens());
        let mut found = vec![(0, 0); pat.len()];
        let mut waiting = (0..pat.len()).filter(|&j| pat[j] != crate::alphabet::ABSENT);
        let mut lanes: Vec<(usize, Search)> =
            waiting.by_ref().take(LANES).map(|j| (j, Search::new(sa.len()))).collect();
        lanes.retain(|(_, s)| !s.done()); // an empty shard holds nothing
        let mut positions = [0usize; LANES];
        while !lanes.is_empty() {
            // Independent reads, issued together: their misses overlap.
            for (k, (_, s)) in lanes.iter().enumerate() {
                positions[k] = sa[s.mid()] as usize;
            }
            let touched: u32 = lanes
                .iter()
                .zip(positions)
                .map(|((_, s), pos)| text.get(pos + s.known()).map_or(0, |&t| t.into()))
                .sum();
            std::hint::black_box(touched);
            let mut k = 0;
            while k < lanes.len() {
                let (j, s) = &mut lanes[k];
                self.step(s, &pat[*j..], positions[k], false);
                if s.done() {
                    found[*j] = self.longest_at(s);
                    if let Some(next) = waiting.next() {
                        lanes[k] = (next, Search::new(sa.len()));
                    } else {
                        lanes.swap_remove(k);
                        positions[k] = positions[lanes.len()];
                        continue;
                    }
                }
                k += 1;
            }
        }
        found
    }

    /// The longest match of a finished lower-bound search, and a document holding it.
    fn longest_at(&self, s: &Search) -> (u32, u64) {
        let (length, slot) =
            if s.lcp_below >= s.lcp_above { (s.lcp_below, s.lo.wrapping_sub(1)) } else { (s.lcp_above, s.lo) };
        if length == 0 {
            return (0, 0);
        }
        (length as u32, self.occurrence(self.sa()[slot] as usize).doc)
    }

    fn occurrence(&self, pos: usize) -> Occurrence {
        let docs = self.docs();
        let bucket = pos / BUCKET;
        let first = self.doc_buckets[bucket] as usize;
        let last = self.doc_buckets.get(bucket + 1).map_or(docs.len() - 2, |&d| d as usize);
        let local = first + docs[first..=last].partition_point(|&start| start <= pos as u64) - 1;
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

    pub fn longest_matches(&self, pat: &[u32]) -> Vec<(u32, u64)> {
        on_shard!(self, s => s.longest_matches(pat))
    }
}
