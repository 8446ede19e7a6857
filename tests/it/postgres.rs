//! Several replicas on one PostgreSQL database, the scale-out deployment: a CLI import, then two
//! real servers on 127.0.0.1:0 sharing the database. Runs where `VERBATIM_TEST_POSTGRES` names a
//! server (CI starts one and sets `VERBATIM_REQUIRE_POSTGRES=1`, so there it cannot be skipped).

use std::path::Path;
use std::sync::Arc;

use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{self, ListThemesRequest, ReclusterRequest, ThemeReportRequest, WriteResult};
use verbatim::store::postgres::ScratchDatabase;
use verbatim::store::{PostgresStore, Store};

use crate::common::TestServer;
use crate::themes::{fixture, run_ok};

async fn replica(db: &ScratchDatabase) -> TestServer {
    let url = db.url().to_string();
    let store: Arc<dyn Store> = Arc::new(tokio::task::spawn_blocking(move || PostgresStore::open(&url)).await.unwrap().unwrap());
    TestServer::start_with_store(store, 256).await
}

/// The store is blocking: off the async runtime, as the server calls it.
async fn responses(server: &TestServer) -> u64 {
    verbatim::ingest::run_blocking(&server.store, |s| s.count_responses("default")).await.unwrap()
}

fn complaint(id: &str) -> pb::SurveyResponse {
    pb::SurveyResponse {
        response_id: id.into(),
        account_id: "a1".into(),
        survey: pb::SurveyType::Nps as i32,
        score: 3.0,
        verbatim: "They charged my card twice for the same invoice. The app is fine.".into(),
        ..Default::default()
    }
}

/// The CLI imports into PostgreSQL; two replicas then serve it: a response sent to both at once
/// is stored once, a recluster through one is the other's active model at once, and either
/// assigns and reports with it.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_postgres_database() {
    let Some(db) = ScratchDatabase::from_env() else { return };
    let url = Path::new(db.url());
    let imported = run_ok(url, &["import", fixture("themes.csv").to_str().unwrap()]);
    assert!(imported.contains(" imported, 0 updated"), "{imported}");
    let (a, b) = (replica(&db).await, replica(&db).await);
    let (mut ca, mut cb) = (VerbatimClient::connect(a.url()).await.unwrap(), VerbatimClient::connect(b.url()).await.unwrap());
    let stored = responses(&a).await;
    assert_eq!(stored, responses(&b).await);
    assert!(stored >= 60, "the fixture's responses: {stored}");

    // The same response sent to both replicas at once: one inserts it, the other finds it.
    let (ra, rb) = tokio::join!(ca.submit_response(complaint("dup-1")), cb.submit_response(complaint("dup-1")));
    let mut writes = [ra.unwrap().into_inner().write(), rb.unwrap().into_inner().write()];
    writes.sort_by_key(|w| *w as i32);
    assert_eq!(writes, [WriteResult::Inserted, WriteResult::Unchanged]);
    assert_eq!(responses(&b).await, stored + 1);

    // Recluster through A; B serves the new model without a restart.
    let model = ca.recluster(ReclusterRequest { k: 4, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(model.version, 1);
    let listed = cb.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    assert_eq!((listed.version, listed.themes.len() as u64), (1, model.themes.len() as u64));
    let reply = cb.submit_response(complaint("new-1")).await.unwrap().into_inner();
    assert!(reply.themes_status.contains("theme model v1"), "{}", reply.themes_status);
    assert!(reply.segments[0].theme.is_some(), "assigned online by B with A's model: {reply:?}");
    let from_a = ca.get_response(pb::GetResponseRequest { response_id: "new-1".into() }).await.unwrap().into_inner();
    assert_eq!(from_a.segments.len(), reply.segments.len(), "what B stored, A reads");

    let report = cb.get_theme_report(ThemeReportRequest { period_days: 3660, ..Default::default() }).await.unwrap().into_inner();
    assert!(report.responses as u64 >= stored && !report.themes.is_empty(), "{report:?}");
    // The CLI reads the same database: B's response, with the theme B gave it.
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("assignments.csv");
    run_ok(url, &["export-assignments", "--output", csv.to_str().unwrap()]);
    let theme = reply.segments[0].theme.as_ref().unwrap().theme_id;
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.lines().any(|l| l.starts_with("new-1,0,") && l.contains(&format!(",{theme},"))), "{rows}");
    a.shutdown().await;
    b.shutdown().await;
}
