//! Scores for (generation, reference) token pairs, one at a time and in parallel batches.
//!
//! Conventions shared by every score: two empty sequences are identical (similarity
//! 1), an empty sequence against a non-empty one scores 0.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Error, Result};
use crate::ragged::Ragged;

/// Edit similarity at or above this counts as approximate memorization.
pub const EDIT_SIMILARITY_THRESHOLD: f64 = 0.9;
/// BLEU-4 at or above this counts as approximate memorization (Ippolito et al.).
pub const BLEU_THRESHOLD: f64 = 0.75;

/// All pair scores of one batch, one entry per pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairScores {
    pub exact_match: Vec<bool>,
    pub prefix_length: Vec<u32>,
    pub positional_match: Vec<f64>,
    pub edit_similarity: Vec<f64>,
    pub bleu4: Vec<f64>,
    pub rouge_l_f1: Vec<f64>,
    pub rouge_l_recall: Vec<f64>,
    /// Edit similarity >= [`EDIT_SIMILARITY_THRESHOLD`] or BLEU-4 >= [`BLEU_THRESHOLD`].
    pub approximate_match: Vec<bool>,
}

/// The module's convention when either side is empty: 1 for two empty sequences, 0 for
/// one; None when both hold tokens and the score must be computed.
fn empty_pair_score(gen: &[u32], reference: &[u32]) -> Option<f64> {
    match (gen.is_empty(), reference.is_empty()) {
        (true, true) => Some(1.0),
        (false, false) => None,
        _ => Some(0.0),
    }
}

/// Length of the longest common prefix (whole blocks compared as slices first, which
/// the compiler turns into wide compares, then token by token).
pub fn prefix_length(gen: &[u32], reference: &[u32]) -> usize {
    const BLOCK: usize = 16;
    let equal_blocks = gen.chunks_exact(BLOCK).zip(reference.chunks_exact(BLOCK)).take_while(|(a, b)| a == b).count();
    let start = equal_blocks * BLOCK;
    start + gen[start..].iter().zip(&reference[start..]).take_while(|(a, b)| a == b).count()
}

/// Share of the reference's positions where the generation holds the same token
/// (the Pythia-style matching-token share; missing generated tokens count as misses).
pub fn positional_match(gen: &[u32], reference: &[u32]) -> f64 {
    if reference.is_empty() {
        return if gen.is_empty() { 1.0 } else { 0.0 };
    }
    let same = gen.iter().zip(reference).filter(|(a, b)| a == b).count();
    same as f64 / reference.len() as f64
}

/// 1 - Levenshtein(gen, reference) / max(|gen|, |reference|), over tokens.
pub fn edit_similarity(gen: &[u32], reference: &[u32]) -> f64 {
    let longest = gen.len().max(reference.len());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(gen, reference) as f64 / longest as f64
}

/// Token-level edit distance (unit-cost insert, delete, substitute), one-row dynamic
/// programme. Written here because strsim's generic version wants owned, sized
/// containers and would copy every pair.
pub fn levenshtein(a: &[u32], b: &[u32]) -> usize {
    let common = prefix_length(a, b);
    let (a, b) = (&a[common..], &b[common..]);
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Length of the longest common subsequence (one-row dynamic programme).
pub fn lcs_length(a: &[u32], b: &[u32]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for &x in a {
        let mut diagonal = 0; // row[j - 1] of the previous row
        for (j, &y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal + 1 } else { above.max(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// ROUGE-L (F1, recall) from the longest common subsequence, as MUSE reports it.
pub fn rouge_l(gen: &[u32], reference: &[u32]) -> (f64, f64) {
    if let Some(score) = empty_pair_score(gen, reference) {
        return (score, score);
    }
    let lcs = lcs_length(gen, reference) as f64;
    let precision = lcs / gen.len() as f64;
    let recall = lcs / reference.len() as f64;
    let f1 = if lcs == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
    (f1, recall)
}

fn ngram_counts(seq: &[u32], n: usize) -> FxHashMap<&[u32], u32> {
    let mut counts = FxHashMap::default();
    for gram in seq.windows(n) {
        *counts.entry(gram).or_insert(0) += 1;
    }
    counts
}

/// Sentence BLEU-4: uniform weights, clipped n-gram precisions, brevity penalty, and
/// add-one smoothing of the 2- to 4-gram precisions (Lin & Och 2004, "BLEU+1"; method 2
/// of Chen & Cherry 2014). An empty generation, or one sharing no token with the
/// reference, scores 0.
pub fn bleu4(gen: &[u32], reference: &[u32]) -> f64 {
    if let Some(score) = empty_pair_score(gen, reference) {
        return score;
    }
    let mut log_precision = 0.0;
    for n in 1..=4usize {
        let ref_counts = ngram_counts(reference, n);
        let gen_counts = ngram_counts(gen, n);
        let matched: u32 = gen_counts.iter().map(|(g, &c)| c.min(ref_counts.get(g).copied().unwrap_or(0))).sum();
        let total = gen.len().saturating_sub(n - 1) as f64;
        let precision = if n == 1 {
            if matched == 0 {
                return 0.0;
            }
            matched as f64 / total
        } else {
            (matched as f64 + 1.0) / (total + 1.0)
        };
        log_precision += precision.ln() / 4.0;
    }
    let (c, r) = (gen.len() as f64, reference.len() as f64);
    let brevity = if c > r { 1.0 } else { (1.0 - r / c).exp() };
    brevity * log_precision.exp()
}

/// OVERLAP_n(a, b): share of a's n-grams (as a multiset) found in the set of b's n-grams.
/// Errors when `a` has no n-gram (shorter than n) or n is 0.
pub fn ngram_overlap(a: &[u32], b: &[u32], n: usize) -> Result<f64> {
    if n == 0 {
        return Err(Error::invalid("n must be at least 1"));
    }
    if a.len() < n {
        return Err(Error::invalid(format!("a sequence of {} tokens has no {n}-gram", a.len())));
    }
    let in_b: FxHashSet<&[u32]> = b.windows(n).collect();
    let found = a.windows(n).filter(|g| in_b.contains(g)).count();
    Ok(found as f64 / (a.len() - n + 1) as f64)
}

fn check_same_length(gens: &Ragged<'_>, refs: &Ragged<'_>) -> Result<()> {
    if gens.len() != refs.len() {
        return Err(Error::invalid(format!("{} generations but {} references", gens.len(), refs.len())));
    }
    Ok(())
}

/// Every pair score for aligned batches of generations and references, in parallel.
pub fn pair_scores(gens: Ragged<'_>, refs: Ragged<'_>) -> Result<PairScores> {
    check_same_length(&gens, &refs)?;
    let rows: Vec<_> = (0..gens.len())
        .into_par_iter()
        .map(|i| {
            let (g, r) = (gens.get(i), refs.get(i));
            let (f1, recall) = rouge_l(g, r);
            (g == r, prefix_length(g, r) as u32, positional_match(g, r), edit_similarity(g, r), bleu4(g, r), f1, recall)
        })
        .collect();
    let mut out = PairScores::default();
    for (exact, prefix, positional, edit, bleu, f1, recall) in rows {
        out.exact_match.push(exact);
        out.prefix_length.push(prefix);
        out.positional_match.push(positional);
        out.edit_similarity.push(edit);
        out.bleu4.push(bleu);
        out.rouge_l_f1.push(f1);
        out.rouge_l_recall.push(recall);
        out.approximate_match.push(edit >= EDIT_SIMILARITY_THRESHOLD || bleu >= BLEU_THRESHOLD);
    }
    Ok(out)
}

/// OVERLAP_n for aligned batches, in parallel.
pub fn ngram_overlap_batch(gens: Ragged<'_>, refs: Ragged<'_>, n: usize) -> Result<Vec<f64>> {
    check_same_length(&gens, &refs)?;
    (0..gens.len()).into_par_iter().map(|i| ngram_overlap(gens.get(i), refs.get(i), n)).collect()
}

/// Extraction likelihood EL_n for a batch of sequences.
///
/// `gens[j]` is the greedy continuation generated for sequence `owner[j]` from its first
/// `prefix[j]` tokens, and must hold exactly `T - prefix[j]` tokens (T the sequence's
/// length). It is compared with the true suffix `x[prefix[j]..]`; EL_n of a sequence is
/// the sum of those overlaps over its generations divided by `T - n`. Prefix lengths run
/// from 1 to T-n, as in Jang et al.'s code (never the empty prefix); a caller may pass
/// fewer, and the sum is still divided by T - n.
pub fn extraction_likelihood(
    sequences: Ragged<'_>,
    gens: Ragged<'_>,
    owner: &[u32],
    prefix: &[u32],
    n: usize,
) -> Result<Vec<f64>> {
    if owner.len() != gens.len() || prefix.len() != gens.len() {
        return Err(Error::invalid("owner and prefix need one entry per generation"));
    }
    for (s, seq) in sequences.iter().enumerate() {
        if seq.len() <= n {
            return Err(Error::invalid(format!("sequence {s} has {} tokens; EL_{n} needs more than {n}", seq.len())));
        }
    }
    for (j, (&s, &p)) in owner.iter().zip(prefix).enumerate() {
        if s as usize >= sequences.len() {
            return Err(Error::invalid(format!("generation {j} belongs to sequence {s}, which does not exist")));
        }
        let len = sequences.get(s as usize).len();
        if p == 0 || p as usize + n > len || gens.get(j).len() != len - p as usize {
            return Err(Error::invalid(format!(
                "generation {j} from a {p}-token prefix of sequence {s} ({len} tokens) should hold {} tokens, not {} \
                 (prefixes run from 1 to T-n)",
                len.saturating_sub(p as usize),
                gens.get(j).len()
            )));
        }
    }
    let mut generations_of: Vec<Vec<usize>> = vec![Vec::new(); sequences.len()];
    for (j, &s) in owner.iter().enumerate() {
        generations_of[s as usize].push(j);
    }
    Ok(generations_of
        .par_iter()
        .enumerate()
        .map(|(s, generations)| {
            let x = sequences.get(s);
            let suffix_grams = SuffixGrams::new(x, n);
            let total: f64 = generations
                .iter()
                .map(|&j| {
                    let a = gens.get(j);
                    suffix_grams.found_in_suffix(a, prefix[j] as usize) as f64 / (a.len() - n + 1) as f64
                })
                .sum();
            total / (x.len() - n) as f64
        })
        .collect())
}

/// Odd multiplier of the polynomial rolling hash over n-grams (arithmetic mod 2^64).
const ROLL: u64 = 0x9E37_79B9_7F4A_7C15;

/// Rolling hashes of every n-gram of `seq`, each computed in O(1) from the one before.
fn rolling_hashes(seq: &[u32], n: usize) -> impl Iterator<Item = u64> + '_ {
    let top = ROLL.wrapping_pow(n as u32 - 1);
    let first: u64 = seq[..n].iter().fold(0, |h, &t| h.wrapping_mul(ROLL).wrapping_add(t as u64));
    (0..seq.len() - n + 1).scan(first, move |h, i| {
        let current = *h;
        if i + n < seq.len() {
            *h = h.wrapping_sub((seq[i] as u64).wrapping_mul(top)).wrapping_mul(ROLL).wrapping_add(seq[i + n] as u64);
        }
        Some(current)
    })
}

/// The n-grams of a sequence x, indexed to answer "is this n-gram among the n-grams of
/// x[p..]" for any p: an n-gram is there iff its last start in x is p or later. Keys are
/// rolling hashes and every hit is confirmed token by token, so the answer is exact;
/// should two distinct n-grams of x share a hash, the index keys on the n-grams themselves.
struct SuffixGrams<'a> {
    x: &'a [u32],
    n: usize,
    last_start: LastStart<'a>,
}

enum LastStart<'a> {
    ByHash(HashTable),
    ByGram(FxHashMap<&'a [u32], usize>),
}

/// Open-addressing table from an n-gram's rolling hash to its last start: a few
/// hundred entries per sequence, probed by the hash's top bits (its best-mixed ones).
struct HashTable {
    slots: Vec<(u64, u32)>,
    shift: u32,
}

const EMPTY: u32 = u32::MAX;

impl HashTable {
    fn with_capacity(entries: usize) -> Self {
        let bits = (2 * entries.max(8)).next_power_of_two().trailing_zeros();
        Self { slots: vec![(0, EMPTY); 1 << bits], shift: 64 - bits }
    }

    fn slot(&self, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (hash >> self.shift) as usize;
        while self.slots[i].1 != EMPTY && self.slots[i].0 != hash {
            i = (i + 1) & mask;
        }
        i
    }

    fn get(&self, hash: u64) -> Option<usize> {
        let (_, start) = self.slots[self.slot(hash)];
        (start != EMPTY).then_some(start as usize)
    }

    fn insert(&mut self, hash: u64, start: usize) {
        let i = self.slot(hash);
        self.slots[i] = (hash, start as u32);
    }
}

impl<'a> SuffixGrams<'a> {
    fn new(x: &'a [u32], n: usize) -> Self {
        let mut by_hash = HashTable::with_capacity(x.len());
        for (i, h) in rolling_hashes(x, n).enumerate() {
            if let Some(before) = by_hash.get(h) {
                if x[before..before + n] != x[i..i + n] {
                    let by_gram = x.windows(n).enumerate().map(|(i, g)| (g, i)).collect();
                    return Self { x, n, last_start: LastStart::ByGram(by_gram) };
                }
            }
            by_hash.insert(h, i);
        }
        Self { x, n, last_start: LastStart::ByHash(by_hash) }
    }

    /// How many of a's n-grams (counted with repeats) occur in x[p..]. While `a` still
    /// follows x[p..] its n-grams are x's own, starting at p or later: those are counted
    /// without a lookup, and only the n-grams from the first difference on are hashed.
    fn found_in_suffix(&self, a: &[u32], p: usize) -> usize {
        let n = self.n;
        let aligned = (prefix_length(a, &self.x[p..]) + 1).saturating_sub(n);
        let rest = &a[aligned..];
        if rest.len() < n {
            return aligned;
        }
        aligned + self.looked_up(rest, p)
    }

    /// How many of a's n-grams occur in x[p..], each looked up in the index.
    fn looked_up(&self, a: &[u32], p: usize) -> usize {
        let n = self.n;
        match &self.last_start {
            LastStart::ByHash(table) => rolling_hashes(a, n)
                .enumerate()
                .filter(|&(i, h)| table.get(h).is_some_and(|s| s >= p && self.x[s..s + n] == a[i..i + n]))
                .count(),
            LastStart::ByGram(map) => a.windows(n).filter(|g| map.get(g).is_some_and(|&s| s >= p)).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_and_lcs_by_hand() {
        assert_eq!(levenshtein(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(levenshtein(&[], &[1, 2]), 2);
        assert_eq!(levenshtein(&[1, 2, 3, 4], &[2, 1, 3, 5]), 3);
        assert_eq!(lcs_length(&[1, 2, 3, 4], &[2, 4, 1]), 2);
    }

    #[test]
    fn rolling_hashes_equal_direct_hashes() {
        let seq = [3, 1, 4, 1, 5, 9, 2, 6];
        let direct: Vec<u64> =
            seq.windows(3).map(|g| g.iter().fold(0u64, |h, &t| h.wrapping_mul(ROLL).wrapping_add(t as u64))).collect();
        assert_eq!(rolling_hashes(&seq, 3).collect::<Vec<_>>(), direct);
    }

    #[test]
    fn suffix_grams_fallback_agrees_with_hashing() {
        let x = [1, 2, 3, 1, 2, 4, 1, 2];
        let by_gram = SuffixGrams {
            x: &x,
            n: 2,
            last_start: LastStart::ByGram(x.windows(2).enumerate().map(|(i, g)| (g, i)).collect()),
        };
        let hashed = SuffixGrams::new(&x, 2);
        for p in 0..x.len() - 1 {
            assert_eq!(by_gram.found_in_suffix(&[1, 2, 4, 1], p), hashed.found_in_suffix(&[1, 2, 4, 1], p));
        }
    }

    #[test]
    fn overlap_counts_repeats_in_a_but_not_in_b() {
        // a's 2-grams: (1,1) x3; b holds (1,1) once -> all three found.
        assert_eq!(ngram_overlap(&[1, 1, 1, 1], &[1, 1], 2).unwrap(), 1.0);
        assert_eq!(ngram_overlap(&[1, 2, 3], &[2, 3, 4], 2).unwrap(), 0.5);
        assert!(ngram_overlap(&[1], &[1], 2).is_err());
    }
}
