//! Dense re-numbering of token ids.
//!
//! The index stores every token as its rank among the distinct ids of its shard
//! (1..=V, order preserved) and uses 0 as the document separator. That keeps the
//! suffix sorter's alphabet small whatever the ids are (ids up to 2^32-1 are fine)
//! and lets a match stop at a document boundary without any extra check, because
//! a mapped query never contains 0.

use rayon::prelude::*;

/// Rank given to a query token that never occurs in the shard: it equals no stored rank.
pub const ABSENT: u32 = u32::MAX;
/// Separator written after every document.
pub const SEPARATOR: u32 = 0;

/// Ids above this use a sorted list instead of a dense lookup table while building.
const DENSE_TABLE_MAX_ID: u32 = 1 << 26;

/// The sorted distinct token ids of one shard; rank of `vocab[i]` is `i + 1`.
#[derive(Clone, Debug)]
pub struct Alphabet<'a> {
    vocab: std::borrow::Cow<'a, [u32]>,
}

impl<'a> Alphabet<'a> {
    pub fn from_sorted(vocab: &'a [u32]) -> Self {
        Self { vocab: std::borrow::Cow::Borrowed(vocab) }
    }

    pub fn vocab(&self) -> &[u32] {
        &self.vocab
    }

    /// Number of distinct ids.
    pub fn len(&self) -> usize {
        self.vocab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vocab.is_empty()
    }

    pub fn rank(&self, token: u32) -> u32 {
        match self.vocab.binary_search(&token) {
            Ok(i) => i as u32 + 1,
            Err(_) => ABSENT,
        }
    }

    /// The id of `rank`, or None for a rank outside 1..=V.
    pub fn get(&self, rank: u32) -> Option<u32> {
        (rank as usize).checked_sub(1).and_then(|i| self.vocab.get(i)).copied()
    }

    pub fn map_query(&self, query: &[u32]) -> Vec<u32> {
        query.iter().map(|&t| self.rank(t)).collect()
    }
}

impl Alphabet<'static> {
    /// Distinct ids of `tokens`, sorted.
    pub fn of(tokens: &[u32]) -> Self {
        let max = tokens.par_iter().copied().max().unwrap_or(0);
        let vocab = if max < DENSE_TABLE_MAX_ID {
            let mut seen = vec![false; max as usize + 1];
            for &t in tokens {
                seen[t as usize] = true;
            }
            seen.iter().enumerate().filter(|(_, &s)| s).map(|(t, _)| t as u32).collect()
        } else {
            let mut v = tokens.to_vec();
            v.par_sort_unstable();
            v.dedup();
            v
        };
        Self { vocab: std::borrow::Cow::Owned(vocab) }
    }

    /// A function from a token of this alphabet to its rank (a dense table when ids are small).
    pub fn ranker(&self) -> impl Fn(u32) -> u32 + Sync + '_ {
        let max = self.vocab.last().copied().unwrap_or(0);
        let table = (max < DENSE_TABLE_MAX_ID).then(|| {
            let mut table = vec![ABSENT; max as usize + 1];
            for (i, &t) in self.vocab.iter().enumerate() {
                table[t as usize] = i as u32 + 1;
            }
            table
        });
        move |t| match &table {
            Some(table) => table.get(t as usize).copied().unwrap_or(ABSENT),
            None => self.rank(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_preserve_order_and_handle_huge_ids() {
        let tokens = [u32::MAX, 7, 7, u32::MAX - 1, 0];
        let a = Alphabet::of(&tokens);
        assert_eq!(a.vocab(), &[0, 7, u32::MAX - 1, u32::MAX]);
        assert_eq!(tokens.iter().map(|&t| a.ranker()(t)).collect::<Vec<_>>(), vec![4, 2, 2, 3, 1]);
        assert_eq!(a.rank(8), ABSENT);
        assert_eq!(a.get(4), Some(u32::MAX));
        assert_eq!(a.get(0), None);
    }

    #[test]
    fn dense_path_matches_sorted_path() {
        let tokens = [5, 1, 5, 3];
        let a = Alphabet::of(&tokens);
        assert_eq!(a.vocab(), &[1, 3, 5]);
        assert_eq!(tokens.iter().map(|&t| a.ranker()(t)).collect::<Vec<_>>(), vec![3, 1, 3, 2]);
    }
}
