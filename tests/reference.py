"""Plain-Python reference implementations of every score the Rust core computes.

Written for obviousness, not speed; the property tests hold the core equal to these.
"""

from __future__ import annotations

import math
from collections import Counter


def prefix_length(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def positional_match(a, b):
    if not b:
        return 1.0 if not a else 0.0
    return sum(1 for i in range(min(len(a), len(b))) if a[i] == b[i]) / len(b)


def levenshtein(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[len(a)][len(b)]


def edit_similarity(a, b):
    if not a and not b:
        return 1.0
    return 1 - levenshtein(a, b) / max(len(a), len(b))


def lcs(a, b):
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table[len(a)][len(b)]


def rouge_l(a, b):
    if not a and not b:
        return 1.0, 1.0
    if not a or not b:
        return 0.0, 0.0
    common = lcs(a, b)
    if common == 0:
        return 0.0, 0.0
    p, r = common / len(a), common / len(b)
    return 2 * p * r / (p + r), r


def ngrams(seq, n):
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def bleu4(a, b):
    """Sentence BLEU-4, add-one smoothing on 2..4-gram precisions, brevity penalty."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    logs = []
    for n in range(1, 5):
        gen, ref = Counter(ngrams(a, n)), Counter(ngrams(b, n))
        matched = sum(min(c, ref[g]) for g, c in gen.items())
        total = max(len(a) - n + 1, 0)
        if n == 1:
            if matched == 0:
                return 0.0
            logs.append(math.log(matched / total))
        else:
            logs.append(math.log((matched + 1) / (total + 1)))
    bp = 1.0 if len(a) > len(b) else math.exp(1 - len(b) / len(a))
    return bp * math.exp(sum(logs) / 4)


def overlap(a, b, n):
    """OVERLAP_n the way Jang et al.'s code does it: tuples in a Python set."""
    grams_b = set(ngrams(b, n))
    grams_a = ngrams(a, n)
    return sum(1 for g in grams_a if g in grams_b) / len(grams_a)


def extraction_likelihood(x, generations_by_prefix, n):
    """EL_n = sum over prefix lengths p = 1..T-n of OVERLAP_n(gen_p, x[p:]) / (T - n)."""
    total = sum(overlap(gen, x[p:], n) for p, gen in generations_by_prefix.items())
    return total / (len(x) - n)


# ---- corpus queries by brute force ----------------------------------------------


def occurrences(docs, ngram):
    return sorted(
        (d, i)
        for d, doc in enumerate(docs)
        for i in range(len(doc) - len(ngram) + 1)
        if list(doc[i : i + len(ngram)]) == list(ngram)
    )


def occurs(docs, span):
    return any(list(doc[i : i + len(span)]) == list(span) for doc in docs for i in range(len(doc) - len(span) + 1))


def matching_lengths(docs, query):
    out = []
    for j in range(len(query)):
        length = 0
        while j + length < len(query) and occurs(docs, query[j : j + length + 1]):
            length += 1
        out.append(length)
    return out


def coverage(lengths, k):
    if not lengths:
        return 0.0
    covered = [False] * len(lengths)
    for j, length in enumerate(lengths):
        if length >= k:
            for i in range(j, j + length):
                covered[i] = True
    return sum(covered) / len(lengths)


def spans(lengths, k):
    """(start, length) of spans >= k not contained in an earlier reported span."""
    out, reach = [], 0
    for j, length in enumerate(lengths):
        if length >= k and j + length > reach:
            out.append((j, length))
            reach = j + length
    return out
