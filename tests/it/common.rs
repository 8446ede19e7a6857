//! Shared set-up: the real model (fetched once if missing), a running server, the shared data.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;
use verbatim::grpc::{self, AppState};
use verbatim::infer::Infer;
use verbatim::ingest::Ingest;
use verbatim::store::{SqliteStore, Store};
use verbatim::model::Encoder;

/// The model directory: `VERBATIM_MODEL_DIR`, or the crate's default `models/all-MiniLM-L6-v2`.
pub fn model_dir() -> PathBuf {
    std::env::var_os("VERBATIM_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(verbatim::model::DEFAULT_MODEL_DIR))
}

/// The committed sentiment branch, `models/sentiment`.
pub fn sentiment_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(verbatim::model::sentiment::DEFAULT_DIR)
}

/// The real encoder with the committed sentiment branch, as the service runs it: loaded once for
/// the whole test binary (fetching the weights if needed).
pub fn encoder() -> Arc<Encoder> {
    static ENCODER: OnceLock<Arc<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let encoder = Encoder::load_or_fetch(&model_dir()).expect("the model loads (see the error for how to fetch it)");
            Arc::new(encoder.with_sentiment(&sentiment_dir()).expect("the committed sentiment branch loads"))
        })
        .clone()
}

/// `../shared` beside the repository, when present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    dir.is_dir().then_some(dir)
}

/// Copies the header and the first `n` rows of the CSV `from` to `to` (written beside it, then
/// renamed, so a reader never sees half a file) and returns those rows.
pub fn first_csv_rows(from: &Path, n: usize, to: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(from).unwrap();
    let part = to.with_extension(format!("part{}", std::process::id()));
    let mut writer = csv::Writer::from_path(&part).unwrap();
    writer.write_record(reader.headers().unwrap()).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().take(n).map(Result::unwrap).collect();
    rows.iter().for_each(|r| writer.write_record(r).unwrap());
    writer.flush().unwrap();
    std::fs::rename(&part, to).unwrap();
    rows
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// A server on 127.0.0.1:0 with the real model and a real store (a SQLite file unless given one); dropped → graceful shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    pub infer: Infer,
    pub store: Arc<dyn Store>,
    /// The server's call counters, as `--metrics-listen` serves them.
    pub metrics: Arc<verbatim::metrics::Metrics>,
    stop: Option<oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
    pub handle: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestServer {
    /// A server with its own fresh SQLite file.
    pub async fn start(queue_capacity: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("verbatim.db");
        let mut server = Self::start_with_db(&db, queue_capacity).await;
        server._dir = Some(dir);
        server
    }

    /// A server on an existing (or new) database file, e.g. to restart on the same data.
    pub async fn start_with_db(db: &Path, queue_capacity: usize) -> Self {
        Self::start_with_store(Arc::new(SqliteStore::open(db).unwrap()), queue_capacity).await
    }

    /// A server on any store, e.g. one of several replicas sharing a PostgreSQL database.
    pub async fn start_with_store(store: Arc<dyn Store>, queue_capacity: usize) -> Self {
        Self::start_with_archive(store, queue_capacity, None).await
    }

    /// A server that keeps a report archive (`serve --report-dir`), which erasures must reach.
    pub async fn start_with_archive(store: Arc<dyn Store>, queue_capacity: usize, archive: Option<verbatim::report::archive::Archive>) -> Self {
        let infer = Infer::start(encoder(), queue_capacity);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(Ingest::new(infer.clone(), store.clone()), "default".into()).with_archive(archive);
        let metrics = state.metrics.clone();
        let handle = tokio::spawn(grpc::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Self { addr, infer, store, metrics, stop: Some(stop), handle: Some(handle), _dir: None }
    }

    /// Serves this server's metrics on another 127.0.0.1:0 port, as `--metrics-listen` does (with
    /// `bearer`: as `--metrics-token-file` does); returns its address.
    pub async fn start_metrics_endpoint(&self, bearer: Option<&str>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(verbatim::metrics::serve_http(listener, self.metrics.clone(), self.infer.clone(), bearer.map(str::to_string)));
        addr
    }

    /// Stops the server and waits until it has finished every call.
    pub async fn shutdown(mut self) {
        self.request_shutdown();
        self.handle.take().unwrap().await.unwrap().unwrap();
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Asks the server to stop; in-flight calls finish first.
    pub fn request_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.request_shutdown();
    }
}
