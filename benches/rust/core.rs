//! Criterion benches of the Rust core: `cargo bench -p memscan-core`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use memscan_core::index::{CorpusIndex, IndexWriter};
use memscan_core::pairs;
use memscan_core::ragged::{offsets_from_lengths, Ragged};

/// Deterministic pseudo-random ids with a skewed distribution (xorshift, squared).
fn tokens(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            (u * u * 49_151.0) as u32
        })
        .collect()
}

fn bench_pairs(c: &mut Criterion) {
    let x = tokens(200, 1);
    let gens: Vec<u32> = (1..=190).flat_map(|p| x[p..].to_vec()).collect();
    let gen_offsets = offsets_from_lengths((1..=190).map(|p| 200 - p));
    let owner = vec![0u32; 190];
    let prefix: Vec<u32> = (1..=190).collect();
    let seq_offsets = [0u64, 200];
    c.bench_function("extraction_likelihood T=200 n=10", |b| {
        b.iter(|| {
            pairs::extraction_likelihood(
                Ragged::new(&x, &seq_offsets).unwrap(),
                Ragged::new(&gens, &gen_offsets).unwrap(),
                &owner,
                &prefix,
                10,
            )
            .unwrap()
        })
    });
    let a = tokens(200, 2);
    c.bench_function("bleu4 200x200", |b| b.iter(|| pairs::bleu4(&a, &x)));
    c.bench_function("edit_similarity 200x200", |b| b.iter(|| pairs::edit_similarity(&a, &x)));
    c.bench_function("rouge_l 200x200", |b| b.iter(|| pairs::rouge_l(&a, &x)));
}

fn bench_index(c: &mut Criterion) {
    let corpus = tokens(1_000_000, 3);
    let offsets = offsets_from_lengths(std::iter::repeat_n(1000, 1000));
    let tmp = tempfile::tempdir().unwrap();
    c.bench_function("index build 1M tokens, 1 thread", |b| {
        b.iter_batched(
            || tmp.path().join(format!("i{}", rand_suffix())),
            |dir| {
                let mut w = IndexWriter::create(&dir, false).unwrap();
                w.add_shard(Ragged::new(&corpus, &offsets).unwrap(), Some(1)).unwrap();
                w.finish("{}").unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    let dir = tmp.path().join("query");
    let mut w = IndexWriter::create(&dir, false).unwrap();
    w.add_shard(Ragged::new(&corpus, &offsets).unwrap(), Some(1)).unwrap();
    w.finish("{}").unwrap();
    let index = CorpusIndex::open(&dir, false).unwrap();
    let query: Vec<u32> = corpus[5000..5128].to_vec();
    c.bench_function("matching_statistics 128-token copied query", |b| {
        b.iter(|| index.matching_statistics(Ragged::new(&query, &[0, 128]).unwrap()))
    });
    c.bench_function("count 4-gram", |b| b.iter(|| index.count(&corpus[700..704]).unwrap()));
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

criterion_group!(benches, bench_pairs, bench_index);
criterion_main!(benches);
