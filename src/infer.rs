//! The queue between request handlers and the encoder: concurrent calls are gathered into dynamic
//! micro-batches (as text-embeddings-inference does), the encoder runs on its own OS thread (never
//! on the async runtime's threads), and a bounded budget of queued texts turns overload into an
//! immediate `Overloaded` error instead of unbounded memory growth.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::model::{Embedding, Encoder};

/// Default number of texts that may wait for or be in the encoder at once.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("the encoder queue is full ({capacity} texts queued); retry with backoff")]
    Overloaded { capacity: usize },
    #[error("the encoder has stopped")]
    Stopped,
    #[error("the encoder failed: {0}")]
    Encoder(String),
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<Embedding>, String>>,
    permit: OwnedSemaphorePermit,
}

/// A cloneable handle to the encoder thread.
#[derive(Clone)]
pub struct Infer {
    jobs: mpsc::UnboundedSender<Job>,
    budget: Arc<Semaphore>,
    capacity: usize,
    /// Texts embedded since start (for the metrics endpoint).
    embedded: Arc<std::sync::atomic::AtomicU64>,
}

impl Infer {
    /// Starts the encoder thread. `capacity` bounds the texts queued or in flight.
    pub fn start(encoder: Arc<Encoder>, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (jobs, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("verbatim-encoder".into())
            .spawn(move || run_encoder(encoder, rx))
            .expect("spawn encoder thread");
        Self { jobs, budget: Arc::new(Semaphore::new(capacity)), capacity, embedded: Default::default() }
    }

    /// Embeds `texts` (in order), batched with whatever else is waiting.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>, InferError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // A request bigger than the whole queue takes all of it rather than never fitting.
        let needed = texts.len().min(self.capacity) as u32;
        let permit = Arc::clone(&self.budget)
            .try_acquire_many_owned(needed)
            .map_err(|_| InferError::Overloaded { capacity: self.capacity })?;
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { texts, reply, permit }).map_err(|_| InferError::Stopped)?;
        let embeddings = answer.await.map_err(|_| InferError::Stopped)?.map_err(InferError::Encoder)?;
        self.embedded.fetch_add(embeddings.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(embeddings)
    }

    /// Texts that can be queued now before calls are refused.
    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }

    /// Texts queued or in flight at most (`--queue-capacity`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Texts embedded since the encoder started.
    pub fn embedded_texts(&self) -> u64 {
        self.embedded.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The encoder loop: block for one job, then take every job already waiting (up to a few
/// batches' worth), run them as one sorted, micro-batched pass, and answer each caller.
fn run_encoder(encoder: Arc<Encoder>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let gather_limit = encoder.batch_options().max_batch * 4;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        let mut total = jobs[0].texts.len();
        while total < gather_limit {
            match rx.try_recv() {
                Ok(job) => {
                    total += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
        match encoder.embed(&texts) {
            Ok(mut embeddings) => {
                for Job { texts, reply, permit } in jobs.into_iter().rev() {
                    let mine = embeddings.split_off(embeddings.len() - texts.len());
                    // Free the queue space before answering, so a caller that retries at once fits.
                    drop(permit);
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "encoder failed");
                for Job { reply, permit, .. } in jobs {
                    drop(permit);
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
