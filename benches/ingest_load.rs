//! Load test of the per-response path: a real server on 127.0.0.1:0 with the real model and a
//! SQLite file, driven through the generated gRPC client. Reports per-response latency p50/p99 for
//! one client and throughput (responses/s) at 8, 32 and 64 concurrent clients.
//!
//! `cargo bench --bench ingest_load` (env `VERBATIM_LOAD_RESPONSES`: responses per level, default 512).
//! Verbatims are the clothing reviews from ../shared when present, else a built-in set.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{SurveyResponse, SurveyType};
use verbatim::grpc::{self, AppState};
use verbatim::infer::{Infer, DEFAULT_QUEUE_CAPACITY};
use verbatim::ingest::Ingest;
use verbatim::model::Encoder;
use verbatim::store::SqliteStore;

const BUILT_IN: &[&str] = &[
    "Love the product, but support took three days to answer.",
    "Billing is confusing. I was charged twice this month!",
    "Great onboarding, the team was really helpful.",
    "The mobile app crashes when I upload photos.",
    "Still waiting for my refund after two weeks.",
    "Fast delivery and the fit is perfect.",
    "Exports time out on large reports; please fix.",
    "",
];

fn verbatims() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/clothing_reviews/reviews.csv");
    let Ok(mut reader) = csv::Reader::from_path(&path) else {
        return BUILT_IN.iter().map(|s| s.to_string()).collect();
    };
    reader.records().filter_map(Result::ok).filter_map(|r| r.get(4).map(str::to_string)).take(4096).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run_level(url: &str, clients: usize, total: usize, texts: Arc<Vec<String>>, offset: usize) -> (f64, Duration, Duration) {
    let per_client = total.div_ceil(clients);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let mut client = VerbatimClient::connect(url.to_string()).await.unwrap();
        let texts = Arc::clone(&texts);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let n = offset + c * per_client + i;
                let request = SurveyResponse {
                    response_id: format!("load-{n}"),
                    account_id: format!("acct-{}", n % 97),
                    survey: SurveyType::Nps as i32,
                    score: (n % 11) as f64,
                    verbatim: texts[n % texts.len()].clone(),
                    ..Default::default()
                };
                let t = Instant::now();
                client.submit_response(request).await.expect("submit");
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(l) = tasks.join_next().await {
        latencies.extend(l.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    (latencies.len() as f64 / elapsed.as_secs_f64(), percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that run short.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("VERBATIM_LOAD_RESPONSES").ok().and_then(|s| s.parse().ok()).unwrap_or(if smoke { 16 } else { 512 });
    let dir = tempfile::tempdir().unwrap();
    let model = std::env::var_os("VERBATIM_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(verbatim::model::DEFAULT_MODEL_DIR));
    let encoder = Arc::new(Encoder::load_or_fetch(&model).expect("model"));
    let texts = Arc::new(verbatims());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&dir.path().join("load.db")).unwrap());
        let state = AppState::new(Ingest::new(Infer::start(encoder, DEFAULT_QUEUE_CAPACITY), store), "default".into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(grpc::serve(listener, state, std::future::pending()));

        println!("ingest load: {total} responses per level, {} distinct verbatims", texts.len());
        let (rate, p50, p99) = run_level(&url, 1, total / 4, Arc::clone(&texts), 0).await;
        println!("1 client:   p50 {:>7.1} ms  p99 {:>7.1} ms  ({rate:.1} responses/s)", ms(p50), ms(p99));
        for (level, clients) in [8, 32, 64].into_iter().enumerate() {
            let (rate, p50, p99) = run_level(&url, clients, total, Arc::clone(&texts), (level + 1) * 1_000_000).await;
            println!("{clients:>2} clients: {rate:>7.1} responses/s  p50 {:>7.1} ms  p99 {:>7.1} ms", ms(p50), ms(p99));
        }
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
