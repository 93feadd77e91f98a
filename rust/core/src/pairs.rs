//! Scores for (generation, reference) token pairs, one at a time and in parallel batches.
//!
//! Conventions shared by every score: two empty sequences are identical (similarity
//! 1), an empty sequence against a non-empty one scores 0.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::{Error, Result};
use crate::ragged::Ragged;

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
}

/// Length of the longest common prefix.
pub fn prefix_length(gen: &[u32], reference: &[u32]) -> usize {
    gen.iter().zip(reference).take_while(|(a, b)| a == b).count()
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
    if gen.is_empty() && reference.is_empty() {
        return (1.0, 1.0);
    }
    if gen.is_empty() || reference.is_empty() {
        return (0.0, 0.0);
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
    if gen.is_empty() && reference.is_empty() {
        return 1.0;
    }
    if gen.is_empty() || reference.is_empty() {
        return 0.0;
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
/// the sum of those overlaps over its generations divided by `T - n`. Prefix lengths
/// 0..T-n give the definition's t = 1..T-n; a caller that cannot generate from an empty
/// prefix may pass fewer, and the sum is still divided by T - n.
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
        if p as usize + n >= len || gens.get(j).len() != len - p as usize {
            return Err(Error::invalid(format!(
                "generation {j} from a {p}-token prefix of sequence {s} ({len} tokens) should hold {} tokens, not {} \
                 (prefixes run from 0 to T-n-1)",
                len.saturating_sub(p as usize),
                gens.get(j).len()
            )));
        }
    }
    let overlaps: Vec<f64> = (0..gens.len())
        .into_par_iter()
        .map(|j| ngram_overlap(gens.get(j), &sequences.get(owner[j] as usize)[prefix[j] as usize..], n))
        .collect::<Result<_>>()?;
    let mut sums = vec![0.0; sequences.len()];
    for (j, overlap) in overlaps.into_iter().enumerate() {
        sums[owner[j] as usize] += overlap;
    }
    Ok(sums.iter().enumerate().map(|(s, total)| total / (sequences.get(s).len() - n) as f64).collect())
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
    fn overlap_counts_repeats_in_a_but_not_in_b() {
        // a's 2-grams: (1,1) x3; b holds (1,1) once -> all three found.
        assert_eq!(ngram_overlap(&[1, 1, 1, 1], &[1, 1], 2).unwrap(), 1.0);
        assert_eq!(ngram_overlap(&[1, 2, 3], &[2, 3, 4], 2).unwrap(), 0.5);
        assert!(ngram_overlap(&[1], &[1], 2).is_err());
    }
}
