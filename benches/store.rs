//! The store alone, SQLite against PostgreSQL in one run: responses of six segments (384-d
//! embeddings, sentiment, theme) written from one thread and from eight at once, then the two
//! big reads (the report's input and the recluster's segments), and the API-token check every
//! gRPC call makes once tokens exist. Prints each figure for both stores, PostgreSQL's ratio to
//! SQLite, and what the token check adds to one response's write.
//!
//! `cargo bench --bench store` (env `VERBATIM_STORE_RESPONSES`, default 2,000 per writer level;
//! PostgreSQL where `VERBATIM_TEST_POSTGRES` names a server: `eval "$(.ci/postgres.sh)"`).

use std::time::Instant;

use verbatim::auth::{AuthMode, Need, Scope};
use verbatim::sentiment::Sentiment;
use verbatim::store::postgres::ScratchDatabase;
use verbatim::store::{ResponseRecord, SegmentRecord, SqliteStore, Store};
use verbatim::survey::SurveyKind;

const SEGMENTS: u32 = 6;
const DIM: usize = 384;

fn response(n: usize) -> (ResponseRecord, Vec<SegmentRecord>) {
    let record = ResponseRecord {
        response_id: format!("r{n}"),
        account_id: format!("acct-{}", n % 97),
        survey: SurveyKind::Nps,
        scale: SurveyKind::Nps.default_scale(),
        score: (n % 11) as f64,
        verbatim: "Love the product. Support is slow. Billing is confusing. The app crashes. Delivery was late. Thanks.".into(),
        submitted_at: 1_700_000_000 + n as i64,
        attributes: [("plan".to_string(), ["free", "pro", "enterprise"][n % 3].to_string())].into(),
    };
    let segments = (0..SEGMENTS)
        .map(|i| SegmentRecord {
            index: i,
            text: format!("Segment {i} of response {n}."),
            start: i * 16,
            end: i * 16 + 15,
            tokens: 8,
            embedding: (0..DIM).map(|d| ((n * 31 + i as usize * 7 + d) % 101) as f32 / 101.0).collect(),
            sentiment: Some(Sentiment::new([0.2, 0.3, 0.5])),
            theme_id: Some(i64::from(i % 4)),
            theme_similarity: Some(0.5),
            theme_version: None,
        })
        .collect();
    (record, segments)
}

/// Responses written per second by `writers` threads, each writing its share of `count` from `first`.
fn write(store: &dyn Store, writers: usize, first: usize, count: usize) -> f64 {
    let prepared: Vec<_> = (first..first + count).map(response).collect();
    let start = Instant::now();
    std::thread::scope(|s| {
        for chunk in prepared.chunks(count.div_ceil(writers)) {
            s.spawn(move || {
                for (r, segs) in chunk {
                    store.upsert_response("bench", r, &format!("h{}", r.response_id), false, segs).unwrap();
                }
            });
        }
    });
    count as f64 / start.elapsed().as_secs_f64()
}

/// Milliseconds for `f`.
fn millis(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() * 1000.0
}

/// Microseconds per token check of a call (50 tokens stored; each call presents one of them).
fn token_check(store: &dyn Store, calls: usize) -> f64 {
    let tokens: Vec<String> = (0..50)
        .map(|i| format!("Bearer {}", verbatim::auth::issue(store, "bench", &format!("t{i}"), &[Scope::Ingest], None).unwrap().secret))
        .collect();
    let start = Instant::now();
    for i in 0..calls {
        let workspace = verbatim::auth::authorize(store, AuthMode::Auto, Some(&tokens[i % tokens.len()]), None, "default", Need::Scope(Scope::Ingest));
        assert_eq!(workspace.unwrap(), "bench");
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

/// [1-writer responses/s, 8-writer responses/s, report input ms, recluster read ms, token check µs].
fn measure(store: &dyn Store, count: usize) -> [f64; 5] {
    let one = write(store, 1, 0, count);
    let eight = write(store, 8, count, count);
    let report = millis(|| assert_eq!(store.impact_input("bench", 0).unwrap().responses.len(), 2 * count));
    let recluster = millis(|| assert_eq!(store.theme_segments("bench", None).unwrap().len(), 2 * count * SEGMENTS as usize));
    let check = token_check(store, count);
    [one, eight, report, recluster, check]
}

fn main() {
    // `cargo test --benches` runs this with --bench absent: keep that run short.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let count: usize = std::env::var("VERBATIM_STORE_RESPONSES").ok().and_then(|s| s.parse().ok()).unwrap_or(if smoke { 40 } else { 2000 });
    let dir = tempfile::tempdir().unwrap();
    let sqlite = measure(&SqliteStore::open(&dir.path().join("bench.db")).unwrap(), count);
    let postgres = ScratchDatabase::from_env().map(|db| measure(&db.open().unwrap(), count));
    println!("store: {count} responses of {SEGMENTS} segments per writer level");
    let names = ["write, 1 thread (responses/s)", "write, 8 threads (responses/s)", "report input (ms)", "recluster read (ms)", "token check (µs per call)"];
    for (i, name) in names.iter().enumerate() {
        match postgres {
            Some(pg) => println!("{name:<32} SQLite {:>9.1}  PostgreSQL {:>9.1}  ratio {:.2}", sqlite[i], pg[i], pg[i] / sqlite[i]),
            None => println!("{name:<32} SQLite {:>9.1}  PostgreSQL (no server)", sqlite[i]),
        }
    }
    // A token check per call against one response's write from one thread (1e6 / rate µs).
    let share = |m: &[f64; 5]| m[4] / (1e6 / m[0]);
    match postgres {
        Some(pg) => println!("{:<32} SQLite {:>9.3}  PostgreSQL {:>9.3}", "token check ÷ one write", share(&sqlite), share(&pg)),
        None => println!("{:<32} SQLite {:>9.3}", "token check ÷ one write", share(&sqlite)),
    }
}
