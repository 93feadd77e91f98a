//! Seeded corruption of a built index: whatever bytes change, opening and every query
//! return a result or an error, never a panic. The checksums are recomputed after each
//! corruption, so only the structural checks made on every opening stand between the
//! damage and the queries (the case of an index too large to checksum on open).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use memscan_core::index::{CorpusIndex, FileSum, Header, IndexWriter, HEADER_FILE};
use memscan_core::ragged::offsets_from_lengths;
use memscan_core::Ragged;

const FILES: [&str; 4] = ["tokens", "sa.u32", "docs.u64", "vocab.u32"];

/// xorshift64*: a seeded stream of numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 40 documents over `distinct` ids (more than 65 535: shards store 4-byte tokens, else 2).
fn corpus(rng: &mut Rng, distinct: usize, length: usize) -> Vec<Vec<u32>> {
    (0..40).map(|_| (0..1 + rng.below(length)).map(|_| rng.below(distinct) as u32 * 1000).collect()).collect()
}

fn build(dir: &Path, docs: &[Vec<u32>]) {
    let mut writer = IndexWriter::create(dir, false).unwrap();
    for shard in docs.chunks(15) {
        let tokens: Vec<u32> = shard.concat();
        let offsets = offsets_from_lengths(shard.iter().map(Vec::len));
        writer.add_shard(Ragged::new(&tokens, &offsets).unwrap(), Some(1)).unwrap();
    }
    writer.finish("{}").unwrap();
}

/// Overwrites one to four words of one shard file with values chosen to hit the edges
/// (0, 1, all ones, a random word, one past the stream), then rewrites the checksums.
fn corrupt(dir: &Path, rng: &mut Rng) -> String {
    let header: Header = serde_json::from_str(&fs::read_to_string(dir.join(HEADER_FILE)).unwrap()).unwrap();
    let shard = &header.shards[rng.below(header.shards.len())];
    let file = match FILES[rng.below(FILES.len())] {
        "tokens" => shard.tokens_file(),
        other => other,
    };
    let rel = format!("{}/{file}", shard.dir);
    let path = dir.join(&rel);
    let mut bytes = fs::read(&path).unwrap();
    let width = if rel.ends_with("u64") {
        8
    } else if rel.ends_with("u16") {
        2
    } else {
        4
    };
    let words = bytes.len() / width;
    let mut what = rel.clone();
    for _ in 0..1 + rng.below(4) {
        if words == 0 {
            break;
        }
        let at = rng.below(words) * width;
        let value: u64 = match rng.below(5) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => rng.next(),
            _ => shard.n_tokens + shard.n_documents + rng.below(3) as u64,
        };
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        what += &format!(" [{at}]={value}");
    }
    fs::write(&path, &bytes).unwrap();
    let mut header = header;
    header.files.insert(rel, FileSum::of(&bytes));
    header.write(dir).unwrap();
    what
}

fn query_everything(index: &CorpusIndex, docs: &[Vec<u32>]) {
    for doc in 0..index.n_documents() + 1 {
        let _ = index.document(doc);
        let _ = index.windows(&[doc], &[1], 2);
    }
    let _ = index.document_lengths();
    for d in docs.iter().take(10) {
        let _ = index.count(&d[..d.len().min(3)]);
        let _ = index.locate(&d[..d.len().min(2)], 50);
    }
    let queries: Vec<u32> = docs.iter().take(8).flat_map(|d| d.iter().take(200)).copied().collect();
    let _ = index.matching_statistics(Ragged::new(&queries, &[0, queries.len() as u64]).unwrap());
}

#[test]
fn corrupted_narrow_indexes_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let docs = corpus(&mut rng, 12, 30);
    corrupt_and_query(&docs, 2500, &mut rng, 2);
}

#[test]
fn corrupted_wide_indexes_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let docs = corpus(&mut rng, 1_000_000, 20_000);
    corrupt_and_query(&docs, 200, &mut rng, 4);
}

fn corrupt_and_query(docs: &[Vec<u32>], cases: u64, rng: &mut Rng, width: u32) {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    build(&pristine, docs);
    let header: Header = serde_json::from_str(&fs::read_to_string(pristine.join(HEADER_FILE)).unwrap()).unwrap();
    let sizes: Vec<_> = header.shards.iter().map(|s| (s.n_tokens, s.vocab_size, s.token_width)).collect();
    assert!(header.shards.iter().any(|s| s.token_width == width), "no {width}-byte shard: {sizes:?}");
    let (mut refused, mut opened) = (0, 0);
    for case in 0..cases {
        let dir = tmp.path().join(format!("case-{case}"));
        copy_dir(&pristine, &dir);
        let what = corrupt(&dir, rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| match CorpusIndex::open(&dir, false) {
            Ok(index) => {
                query_everything(&index, docs);
                true
            }
            Err(_) => false,
        }));
        match outcome {
            Ok(true) => opened += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("case {case} panicked after corrupting {what}"),
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("{cases} corruptions of {width}-byte shards: {refused} refused on opening, {opened} opened and queried without a panic");
    assert!(refused > cases / 4, "the structural checks refused only {refused} of {cases}");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
