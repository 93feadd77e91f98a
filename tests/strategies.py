"""Hypothesis strategies for token sequences, edges included: empty sequences, one
repeated token, ids near 2^32-1, documents of length 1."""

from hypothesis import strategies as st

EDGE_IDS = [0, 1, 2, 2**32 - 2, 2**32 - 1]

token = st.one_of(st.integers(0, 4), st.sampled_from(EDGE_IDS))
sequence = st.lists(token, max_size=24)
repeated = st.builds(lambda t, n: [t] * n, token, st.integers(0, 24))
any_sequence = st.one_of(sequence, repeated)
documents = st.lists(st.one_of(st.lists(token, min_size=1, max_size=1), sequence, repeated), min_size=1, max_size=8)
