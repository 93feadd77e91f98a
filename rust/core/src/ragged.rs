use crate::error::{Error, Result};

/// A batch of token sequences stored flat: sequence `i` is `tokens[offsets[i]..offsets[i + 1]]`.
///
/// This is the shape numpy hands over without copying (one `uint32` array plus one
/// `uint64` offsets array), and the shape every batch function takes.
#[derive(Clone, Copy, Debug)]
pub struct Ragged<'a> {
    tokens: &'a [u32],
    offsets: &'a [u64],
}

impl<'a> Ragged<'a> {
    /// Checks that offsets start at 0, never decrease and end at `tokens.len()`.
    pub fn new(tokens: &'a [u32], offsets: &'a [u64]) -> Result<Self> {
        let Some((&first, _)) = offsets.split_first() else {
            return Err(Error::invalid("offsets must hold at least one entry (0)"));
        };
        if first != 0 {
            return Err(Error::invalid("offsets must start at 0"));
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::invalid("offsets must never decrease"));
        }
        let last = *offsets.last().unwrap();
        if last != tokens.len() as u64 {
            return Err(Error::invalid(format!("offsets end at {last} but there are {} tokens", tokens.len())));
        }
        Ok(Self { tokens, offsets })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &'a [u32] {
        &self.tokens[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn tokens(&self) -> &'a [u32] {
        self.tokens
    }

    pub fn offsets(&self) -> &'a [u64] {
        self.offsets
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u32]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Offsets (length `lens.len() + 1`) for sequences of the given lengths.
pub fn offsets_from_lengths(lens: impl IntoIterator<Item = usize>) -> Vec<u64> {
    let mut offsets = vec![0u64];
    let mut end = 0u64;
    for len in lens {
        end += len as u64;
        offsets.push(end);
    }
    offsets
}
