//! `memscan._core`: thin PyO3 bindings over memscan-core.
//!
//! Token batches arrive as contiguous numpy arrays (`uint32` tokens, `uint64` offsets)
//! and are borrowed without copying; every batch call releases the GIL and runs on
//! rayon. Results go back as numpy arrays or typed objects holding them. The Python
//! package (`memscan.scan.index`, `memscan.scan.scores`) wraps these with friendlier
//! signatures.

use memscan_core::index::{self, CorpusIndex as CoreIndex, IndexWriter as CoreWriter, ShardPiece};
use memscan_core::{pairs, with_threads, Error, Ragged};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

create_exception!(
    _core,
    IndexCorruptError,
    PyValueError,
    "An index directory that is not one, is truncated, or fails its checksum."
);

fn py_err(e: Error) -> PyErr {
    match e {
        Error::Invalid(msg) => PyValueError::new_err(msg),
        e @ Error::Corrupt { .. } => IndexCorruptError::new_err(e.to_string()),
        e @ Error::Io { .. } => PyOSError::new_err(e.to_string()),
    }
}

type Tokens<'py> = PyReadonlyArray1<'py, u32>;
/// Two aligned arrays handed back together (e.g. documents and offsets).
type ArrayPairValue<'py, A, B> = (Bound<'py, PyArray1<A>>, Bound<'py, PyArray1<B>>);
type ArrayPair<'py, A, B> = PyResult<ArrayPairValue<'py, A, B>>;
type Offsets<'py> = PyReadonlyArray1<'py, u64>;

fn slice<'a, T: numpy::Element>(array: &'a PyReadonlyArray1<'_, T>, what: &str) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| PyValueError::new_err(format!("{what} must be a contiguous 1-D array")))
}

/// A read-only view of an array this module handed out (refused while Python writes to it).
fn borrowed<'py, T: numpy::Element>(array: &Bound<'py, PyArray1<T>>) -> PyResult<PyReadonlyArray1<'py, T>> {
    array.try_readonly().map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

fn ragged<'a>(tokens: &'a Tokens<'_>, offsets: &'a Offsets<'_>) -> PyResult<Ragged<'a>> {
    Ragged::new(slice(tokens, "tokens")?, slice(offsets, "offsets")?).map_err(py_err)
}

/// Runs `work` without the GIL on `threads` rayon workers (all cores when None).
fn detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    work: impl FnOnce() -> memscan_core::Result<T> + Send,
) -> PyResult<T> {
    py.detach(|| with_threads(threads, work).and_then(|r| r)).map_err(py_err)
}

/// Every pair score of a batch, one entry per pair (see memscan.scan.scores).
#[pyclass(module = "memscan._core", frozen)]
struct PairScores {
    #[pyo3(get)]
    exact_match: Py<PyArray1<bool>>,
    #[pyo3(get)]
    prefix_length: Py<PyArray1<u32>>,
    #[pyo3(get)]
    positional_match: Py<PyArray1<f64>>,
    #[pyo3(get)]
    edit_similarity: Py<PyArray1<f64>>,
    #[pyo3(get)]
    bleu4: Py<PyArray1<f64>>,
    #[pyo3(get)]
    rouge_l_f1: Py<PyArray1<f64>>,
    #[pyo3(get)]
    rouge_l_recall: Py<PyArray1<f64>>,
    #[pyo3(get)]
    approximate_match: Py<PyArray1<bool>>,
}

/// (tokens, offsets) of a list of 1-D contiguous `uint32` arrays, or None when an item
/// is anything else (the caller then packs in Python). For thousands of short arrays
/// this costs a fraction of numpy's `concatenate` plus a `cumsum` over their sizes.
#[pyfunction]
fn pack_arrays<'py>(py: Python<'py>, seqs: &Bound<'py, PyList>) -> PyResult<Option<ArrayPairValue<'py, u32, u64>>> {
    let mut arrays = Vec::with_capacity(seqs.len());
    let mut total = 0usize;
    for item in seqs.iter() {
        let Ok(array) = item.cast_into::<PyArray1<u32>>() else { return Ok(None) };
        if !numpy::PyUntypedArrayMethods::is_contiguous(&array) {
            return Ok(None);
        }
        total += numpy::PyUntypedArrayMethods::len(&array);
        arrays.push(array);
    }
    let mut tokens: Vec<u32> = Vec::with_capacity(total);
    let mut offsets: Vec<u64> = Vec::with_capacity(arrays.len() + 1);
    offsets.push(0);
    for array in &arrays {
        // SAFETY: the slice is copied at once while this thread holds the GIL and runs no
        // Python code, so nothing can write to the array meanwhile; numpy's borrow
        // tracking (a lookup per array, most of this function's time) is skipped.
        let values = unsafe { array.as_slice() }.map_err(|e| PyValueError::new_err(e.to_string()))?;
        tokens.extend_from_slice(values);
        offsets.push(tokens.len() as u64);
    }
    Ok(Some((tokens.into_pyarray(py), offsets.into_pyarray(py))))
}

/// Builds one shard of the documents (tokens, offsets) into the new folder `dir` and
/// returns its description as JSON, for `IndexWriter.adopt_shard` (shards built apart).
#[pyfunction]
#[pyo3(signature = (dir, tokens, offsets, threads=None))]
fn write_shard(
    py: Python<'_>,
    dir: std::path::PathBuf,
    tokens: Tokens<'_>,
    offsets: Offsets<'_>,
    threads: Option<usize>,
) -> PyResult<String> {
    let docs = ragged(&tokens, &offsets)?;
    py.detach(|| index::write_shard(&dir, docs, threads)).map(|piece| piece.to_json()).map_err(py_err)
}

#[pyfunction]
#[pyo3(signature = (gen_tokens, gen_offsets, ref_tokens, ref_offsets, threads=None))]
fn pair_scores<'py>(
    py: Python<'py>,
    gen_tokens: Tokens<'py>,
    gen_offsets: Offsets<'py>,
    ref_tokens: Tokens<'py>,
    ref_offsets: Offsets<'py>,
    threads: Option<usize>,
) -> PyResult<PairScores> {
    let (gens, refs) = (ragged(&gen_tokens, &gen_offsets)?, ragged(&ref_tokens, &ref_offsets)?);
    let s = detached(py, threads, || pairs::pair_scores(gens, refs))?;
    Ok(PairScores {
        exact_match: s.exact_match.into_pyarray(py).unbind(),
        prefix_length: s.prefix_length.into_pyarray(py).unbind(),
        positional_match: s.positional_match.into_pyarray(py).unbind(),
        edit_similarity: s.edit_similarity.into_pyarray(py).unbind(),
        bleu4: s.bleu4.into_pyarray(py).unbind(),
        rouge_l_f1: s.rouge_l_f1.into_pyarray(py).unbind(),
        rouge_l_recall: s.rouge_l_recall.into_pyarray(py).unbind(),
        approximate_match: s.approximate_match.into_pyarray(py).unbind(),
    })
}

#[pyfunction]
#[pyo3(signature = (gen_tokens, gen_offsets, ref_tokens, ref_offsets, n, threads=None))]
fn ngram_overlap<'py>(
    py: Python<'py>,
    gen_tokens: Tokens<'py>,
    gen_offsets: Offsets<'py>,
    ref_tokens: Tokens<'py>,
    ref_offsets: Offsets<'py>,
    n: usize,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (gens, refs) = (ragged(&gen_tokens, &gen_offsets)?, ragged(&ref_tokens, &ref_offsets)?);
    Ok(detached(py, threads, || pairs::ngram_overlap_batch(gens, refs, n))?.into_pyarray(py))
}

#[pyfunction]
#[pyo3(signature = (seq_tokens, seq_offsets, gen_tokens, gen_offsets, owner, prefix, n, threads=None))]
#[allow(clippy::too_many_arguments)]
fn extraction_likelihood<'py>(
    py: Python<'py>,
    seq_tokens: Tokens<'py>,
    seq_offsets: Offsets<'py>,
    gen_tokens: Tokens<'py>,
    gen_offsets: Offsets<'py>,
    owner: PyReadonlyArray1<'py, u32>,
    prefix: PyReadonlyArray1<'py, u32>,
    n: usize,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let (seqs, gens) = (ragged(&seq_tokens, &seq_offsets)?, ragged(&gen_tokens, &gen_offsets)?);
    let (owner, prefix) = (slice(&owner, "owner")?, slice(&prefix, "prefix")?);
    Ok(detached(py, threads, || pairs::extraction_likelihood(seqs, gens, owner, prefix, n))?.into_pyarray(py))
}

/// The maximal corpus spans of a batch of queries, as aligned arrays.
#[pyclass(module = "memscan._core", frozen)]
struct Spans {
    #[pyo3(get)]
    query: Py<PyArray1<u64>>,
    #[pyo3(get)]
    start: Py<PyArray1<u64>>,
    #[pyo3(get)]
    length: Py<PyArray1<u64>>,
    #[pyo3(get)]
    doc: Py<PyArray1<i64>>,
}

impl Spans {
    fn new(py: Python<'_>, spans: &[index::Span]) -> Self {
        let column = |f: fn(&index::Span) -> u64| spans.iter().map(f).collect::<Vec<_>>().into_pyarray(py).unbind();
        Self {
            query: column(|s| s.query),
            start: column(|s| s.start),
            length: column(|s| s.length),
            doc: spans.iter().map(|s| s.doc).collect::<Vec<_>>().into_pyarray(py).unbind(),
        }
    }
}

/// Matching statistics of a batch of queries, flat and aligned with the query tokens:
/// query i is `offsets[i]..offsets[i + 1]`; coverage and spans are read off them.
#[pyclass(module = "memscan._core", frozen)]
struct MatchingStatistics {
    #[pyo3(get)]
    lengths: Py<PyArray1<u32>>,
    #[pyo3(get)]
    docs: Py<PyArray1<i64>>,
    #[pyo3(get)]
    offsets: Py<PyArray1<u64>>,
}

#[pymethods]
impl MatchingStatistics {
    /// Statistics merged from several sources (e.g. shard groups served apart); the three
    /// arrays must agree: lengths and docs aligned, offsets delimiting them.
    #[new]
    fn new(
        py: Python<'_>,
        lengths: Tokens<'_>,
        docs: PyReadonlyArray1<'_, i64>,
        offsets: Offsets<'_>,
    ) -> PyResult<Self> {
        ragged(&lengths, &offsets)?;
        if docs.len()? != lengths.len()? {
            return Err(PyValueError::new_err("docs must be aligned with lengths"));
        }
        Ok(Self {
            lengths: lengths.as_array().to_owned().into_pyarray(py).unbind(),
            docs: docs.as_array().to_owned().into_pyarray(py).unbind(),
            offsets: offsets.as_array().to_owned().into_pyarray(py).unbind(),
        })
    }

    /// Share of each query's tokens inside a corpus span of at least `k` tokens.
    fn coverage<'py>(&self, py: Python<'py>, k: u32) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (lengths, offsets) = (borrowed(self.lengths.bind(py))?, borrowed(self.offsets.bind(py))?);
        let lengths = ragged(&lengths, &offsets)?;
        Ok(detached(py, None, || index::coverage_batch(lengths, k))?.into_pyarray(py))
    }

    /// The maximal corpus spans of at least `k` tokens of every query.
    fn spans(&self, py: Python<'_>, k: u32) -> PyResult<Spans> {
        let (lengths, offsets) = (borrowed(self.lengths.bind(py))?, borrowed(self.offsets.bind(py))?);
        let docs = borrowed(self.docs.bind(py))?;
        let (lengths, docs) = (ragged(&lengths, &offsets)?, slice(&docs, "docs")?);
        let spans = detached(py, None, || index::spans_batch(lengths, docs, k))?;
        Ok(Spans::new(py, &spans))
    }
}

/// Writes an index directory shard by shard (see memscan.scan.index.CorpusIndex.build).
#[pyclass(module = "memscan._core")]
struct IndexWriter {
    inner: Option<CoreWriter>,
}

impl IndexWriter {
    fn writer(&mut self) -> PyResult<&mut CoreWriter> {
        self.inner.as_mut().ok_or_else(|| PyRuntimeError::new_err("this index writer is already finished"))
    }
}

#[pymethods]
impl IndexWriter {
    #[new]
    #[pyo3(signature = (path, overwrite=false))]
    fn new(path: std::path::PathBuf, overwrite: bool) -> PyResult<Self> {
        Ok(Self { inner: Some(CoreWriter::create(&path, overwrite).map_err(py_err)?) })
    }

    #[getter]
    fn work_dir(&mut self) -> PyResult<std::path::PathBuf> {
        Ok(self.writer()?.work_dir().to_path_buf())
    }

    #[pyo3(signature = (tokens, offsets, threads=None))]
    fn add_shard(
        &mut self,
        py: Python<'_>,
        tokens: Tokens<'_>,
        offsets: Offsets<'_>,
        threads: Option<usize>,
    ) -> PyResult<()> {
        let docs = ragged(&tokens, &offsets)?;
        let writer = self.writer()?;
        py.detach(|| writer.add_shard(docs, threads)).map_err(py_err)
    }

    /// Appends a shard `write_shard` wrote into `work_dir/<name>`; `piece_json` is what it returned.
    fn adopt_shard(&mut self, name: &str, piece_json: &str) -> PyResult<()> {
        let piece = ShardPiece::from_json(piece_json).map_err(py_err)?;
        self.writer()?.adopt_shard(name, &piece).map_err(py_err)
    }

    fn add_file(&mut self, rel: &str) -> PyResult<()> {
        self.writer()?.add_file(rel).map_err(py_err)
    }

    /// Writes the header (with `metadata_json` under "metadata") and moves the index into place.
    fn finish(&mut self, metadata_json: &str) -> PyResult<()> {
        let writer =
            self.inner.take().ok_or_else(|| PyRuntimeError::new_err("this index writer is already finished"))?;
        writer.finish(metadata_json).map(|_| ()).map_err(py_err)
    }

    /// Abandons the build and removes the partial folder.
    fn abort(&mut self) {
        self.inner = None;
    }
}

/// A memory-mapped corpus index (see memscan.scan.index.CorpusIndex).
#[pyclass(module = "memscan._core", frozen)]
struct CorpusIndex {
    inner: CoreIndex,
}

impl CorpusIndex {
    /// Runs a query, turning a panic into `IndexCorruptError`: opening checks the structure
    /// every query relies on, but only a sample of the suffix array, so damage outside the
    /// sample must still end as an error rather than a crash.
    fn guarded<T>(&self, query: impl FnOnce() -> memscan_core::Result<T>) -> memscan_core::Result<T> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(query)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(Error::corrupt(
                self.inner.dir(),
                format!("a query failed on damaged index data ({what}); rebuild the index"),
            ))
        })
    }
}

#[pymethods]
impl CorpusIndex {
    #[staticmethod]
    #[pyo3(signature = (path, verify=false, shards=None))]
    fn open(py: Python<'_>, path: std::path::PathBuf, verify: bool, shards: Option<Vec<usize>>) -> PyResult<Self> {
        Ok(Self { inner: py.detach(|| CoreIndex::open_shards(&path, verify, shards.as_deref())).map_err(py_err)? })
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.guarded(|| self.inner.verify())).map_err(py_err)
    }

    #[getter]
    fn n_tokens(&self) -> u64 {
        self.inner.n_tokens()
    }

    #[getter]
    fn n_documents(&self) -> u64 {
        self.inner.n_documents()
    }

    #[getter]
    fn header_json(&self) -> String {
        self.inner.header().to_json()
    }

    fn document<'py>(&self, py: Python<'py>, doc: u64) -> PyResult<Bound<'py, PyArray1<u32>>> {
        Ok(self.guarded(|| self.inner.document(doc)).map_err(py_err)?.into_pyarray(py))
    }

    fn document_lengths<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.document_lengths().into_pyarray(py)
    }

    /// Tokens `starts[i]..starts[i] + length` of document `docs[i]`, flat.
    #[pyo3(signature = (docs, starts, length, threads=None))]
    fn windows<'py>(
        &self,
        py: Python<'py>,
        docs: PyReadonlyArray1<'py, u64>,
        starts: PyReadonlyArray1<'py, u64>,
        length: u64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let (docs, starts) = (slice(&docs, "docs")?, slice(&starts, "starts")?);
        Ok(detached(py, threads, || self.guarded(|| self.inner.windows(docs, starts, length)))?.into_pyarray(py))
    }

    fn count(&self, ngram: Tokens<'_>) -> PyResult<u64> {
        let ngram = slice(&ngram, "ngram")?;
        self.guarded(|| self.inner.count(ngram)).map_err(py_err)
    }

    #[pyo3(signature = (tokens, offsets, threads=None))]
    fn count_batch<'py>(
        &self,
        py: Python<'py>,
        tokens: Tokens<'py>,
        offsets: Offsets<'py>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let queries = ragged(&tokens, &offsets)?;
        Ok(detached(py, threads, || self.guarded(|| self.inner.count_batch(queries)))?.into_pyarray(py))
    }

    /// (documents, offsets) of up to `limit` occurrences, sorted.
    fn locate<'py>(&self, py: Python<'py>, ngram: Tokens<'py>, limit: usize) -> ArrayPair<'py, u64, u64> {
        let ngram = slice(&ngram, "ngram")?;
        let found = self.guarded(|| self.inner.locate(ngram, limit)).map_err(py_err)?;
        let docs: Vec<u64> = found.iter().map(|o| o.doc).collect();
        let offsets: Vec<u64> = found.iter().map(|o| o.offset).collect();
        Ok((docs.into_pyarray(py), offsets.into_pyarray(py)))
    }

    /// The matching statistics of a batch of queries.
    #[pyo3(signature = (tokens, offsets, threads=None))]
    fn matching_statistics<'py>(
        &self,
        py: Python<'py>,
        tokens: Tokens<'py>,
        offsets: Offsets<'py>,
        threads: Option<usize>,
    ) -> PyResult<MatchingStatistics> {
        let queries = ragged(&tokens, &offsets)?;
        let ms = detached(py, threads, || self.guarded(|| Ok(self.inner.matching_statistics(queries))))?;
        Ok(MatchingStatistics {
            lengths: ms.lengths.into_pyarray(py).unbind(),
            docs: ms.docs.into_pyarray(py).unbind(),
            offsets: queries.offsets().to_vec().into_pyarray(py).unbind(),
        })
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Every panic reaches Python as an exception carrying its message (an index query's as
    // IndexCorruptError), so the default hook's report on stderr would only repeat it.
    std::panic::set_hook(Box::new(|_| {}));
    m.add("IndexCorruptError", m.py().get_type::<IndexCorruptError>())?;
    m.add_function(wrap_pyfunction!(pack_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(write_shard, m)?)?;
    m.add_function(wrap_pyfunction!(pair_scores, m)?)?;
    m.add_function(wrap_pyfunction!(ngram_overlap, m)?)?;
    m.add_function(wrap_pyfunction!(extraction_likelihood, m)?)?;
    m.add_class::<PairScores>()?;
    m.add_class::<MatchingStatistics>()?;
    m.add_class::<Spans>()?;
    m.add_class::<IndexWriter>()?;
    m.add_class::<CorpusIndex>()?;
    Ok(())
}
