//! The index end to end in Rust: build with several shards, reopen, query, detect damage.

use memscan_core::index::{write_shard, CorpusIndex, IndexWriter, Occurrence};
use memscan_core::ragged::offsets_from_lengths;
use memscan_core::{Error, Ragged};

fn write_index(dir: &std::path::Path, shards: &[Vec<Vec<u32>>]) -> CorpusIndex {
    let mut writer = IndexWriter::create(dir, false).unwrap();
    for docs in shards {
        let tokens: Vec<u32> = docs.concat();
        let offsets = offsets_from_lengths(docs.iter().map(Vec::len));
        writer.add_shard(Ragged::new(&tokens, &offsets).unwrap(), Some(1)).unwrap();
    }
    writer.finish("{}").unwrap();
    CorpusIndex::open(dir, true).unwrap()
}

fn brute_count(docs: &[Vec<u32>], pat: &[u32]) -> u64 {
    docs.iter().map(|d| d.windows(pat.len()).filter(|w| *w == pat).count() as u64).sum()
}

#[test]
fn sharded_queries_match_brute_force() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = vec![vec![vec![1, 2, 3, 1, 2], vec![u32::MAX, 1, 2]], vec![vec![2, 3], vec![1]]];
    let index = write_index(&tmp.path().join("i"), &shards);
    let all: Vec<Vec<u32>> = shards.concat();
    for pat in [vec![1], vec![1, 2], vec![2, 3], vec![u32::MAX, 1], vec![3, 1, 2], vec![7]] {
        assert_eq!(index.count(&pat).unwrap(), brute_count(&all, &pat), "{pat:?}");
    }
    assert_eq!(
        index.locate(&[2, 3], 10).unwrap(),
        vec![Occurrence { doc: 0, offset: 1 }, Occurrence { doc: 2, offset: 0 }]
    );
    let query = [u32::MAX, 1, 2, 3, 1];
    let ms = index.matching_statistics(Ragged::new(&query, &[0, 5]).unwrap());
    assert_eq!(ms.lengths, vec![3, 4, 3, 2, 1]);
    assert_eq!(ms.docs[0], 1);
    assert_eq!(index.document(1).unwrap(), vec![u32::MAX, 1, 2]);
    assert_eq!(index.document_lengths(), vec![5, 3, 2, 1]);
    assert_eq!(index.windows(&[0, 1, 2], &[3, 0, 0], 2).unwrap(), vec![1, 2, u32::MAX, 1, 2, 3]);
    assert!(index.windows(&[3], &[0], 2).is_err());
    assert!(index.windows(&[0], &[u64::MAX], 2).is_err());
    assert!(index.windows(&[4], &[0], 1).is_err());
}

#[test]
fn damage_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    write_index(&dir, &[vec![vec![5, 6, 7]]]);
    let sa = dir.join("shard-00000/sa.u32");
    let mut bytes = std::fs::read(&sa).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&sa, &bytes).unwrap();
    assert!(CorpusIndex::open(&dir, false).is_ok());
    assert!(matches!(CorpusIndex::open(&dir, true), Err(Error::Corrupt { .. })));
    std::fs::write(&sa, &bytes[..4]).unwrap();
    assert!(matches!(CorpusIndex::open(&dir, false), Err(Error::Corrupt { .. })));
}

#[test]
fn writer_refuses_existing_and_cleans_up_when_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i");
    std::fs::create_dir(&dir).unwrap();
    assert!(matches!(IndexWriter::create(&dir, false), Err(Error::Invalid(_))));
    let writer = IndexWriter::create(&tmp.path().join("j"), false).unwrap();
    let partial = writer.work_dir().to_path_buf();
    assert!(partial.exists());
    drop(writer);
    assert!(!partial.exists());
}

#[test]
fn shards_written_apart_and_adopted_answer_like_shards_added_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = vec![vec![vec![1, 2, 3, 1, 2], vec![9, 1, 2]], vec![vec![2, 3], vec![1]]];
    let reference = write_index(&tmp.path().join("i"), &shards);
    let dir = tmp.path().join("j");
    let mut writer = IndexWriter::create(&dir, false).unwrap();
    for (n, docs) in shards.iter().enumerate() {
        let tokens: Vec<u32> = docs.concat();
        let offsets = offsets_from_lengths(docs.iter().map(Vec::len));
        let name = format!("slice-{n}/shard-00000");
        let piece = write_shard(&writer.work_dir().join(&name), Ragged::new(&tokens, &offsets).unwrap(), None).unwrap();
        let roundtrip = memscan_core::index::ShardPiece::from_json(&piece.to_json()).unwrap();
        writer.adopt_shard(&name, &roundtrip).unwrap();
        assert!(matches!(writer.adopt_shard(&name, &piece), Err(Error::Invalid(_))), "adopted twice");
    }
    assert!(matches!(writer.adopt_shard("../elsewhere", &reference_piece()), Err(Error::Invalid(_))));
    writer.finish("{}").unwrap();
    let adopted = CorpusIndex::open(&dir, true).unwrap();
    let query = [9, 1, 2, 3, 1, 7];
    let ragged = Ragged::new(&query, &[0, 6]).unwrap();
    assert_eq!(adopted.matching_statistics(ragged), reference.matching_statistics(ragged));
    assert_eq!(adopted.document_lengths(), reference.document_lengths());

    // A subset of the shards answers for those shards only, with documents numbered over the index.
    let second = CorpusIndex::open_shards(&dir, false, Some(&[1])).unwrap();
    assert_eq!(second.count(&[2, 3]).unwrap(), 1);
    assert_eq!(second.locate(&[1], 5).unwrap(), vec![Occurrence { doc: 3, offset: 0 }]);
    assert!(matches!(CorpusIndex::open_shards(&dir, false, Some(&[2])), Err(Error::Invalid(_))));
}

fn reference_piece() -> memscan_core::index::ShardPiece {
    memscan_core::index::ShardPiece { n_documents: 1, n_tokens: 1, vocab_size: 1, files: Default::default() }
}
