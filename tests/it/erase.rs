//! Erasure against a real server, a real model and a real SQLite file: a response quoted by a
//! theme is erased through gRPC and no longer appears anywhere; bad requests erase nothing.

use std::process::Command;

use tonic::Code;
use verbatim::store::Store;
use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{EraseResponsesRequest, GetResponseRequest, ListThemesRequest, ReclusterRequest};

use crate::common::TestServer;
use crate::themes::{fixture, run_ok};

#[tokio::test(flavor = "multi_thread")]
async fn an_erased_response_leaves_no_verbatim_segment_or_quote_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    run_ok(&db, &["import", fixture("themes.csv").to_str().unwrap()]);
    let server = TestServer::start_with_db(&db, 256).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();
    client.recluster(ReclusterRequest { k: 4, ..Default::default() }).await.unwrap();
    let themes = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner().themes;
    let quote = themes.iter().flat_map(|t| &t.quotes).next().expect("themes quote their segments").clone();
    let rows = server.store.theme_assignments("default").unwrap();
    let id = rows.iter().find(|r| r.segment_text == quote).expect("a quote is a stored segment").response_id.clone();
    let (responses, segments) = (server.store.count_responses("default").unwrap(), server.store.count_segments("default").unwrap());

    // Bad requests name the field and erase nothing.
    let bad = [
        (EraseResponsesRequest::default(), "response_ids: give exactly one of"),
        (EraseResponsesRequest { response_ids: vec![id.clone()], account_id: "acct-1".into(), ..Default::default() }, "exactly one of"),
        (EraseResponsesRequest { response_ids: vec![id.clone(), " ".into()], ..Default::default() }, "response_ids[1]: empty id"),
        (EraseResponsesRequest { response_ids: vec!["x".into(); 1001], ..Default::default() }, "at most 1000"),
        (EraseResponsesRequest { submitted_before: "soon".into(), ..Default::default() }, "submitted_before: cannot parse"),
    ];
    for (request, message) in bad {
        let status = client.erase_responses(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(message), "{message:?} not in {:?}", status.message());
    }
    assert_eq!(server.store.count_responses("default").unwrap(), responses);

    let reply = client.erase_responses(EraseResponsesRequest { response_ids: vec![id.clone()], ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(reply.responses, 1);
    assert!(reply.segments >= 1 && reply.quotes >= 1, "{reply:?}");
    assert_eq!(client.get_response(GetResponseRequest { response_id: id.clone() }).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(server.store.count_segments("default").unwrap(), segments - reply.segments);
    let themes = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner().themes;
    assert!(themes.iter().all(|t| !t.quotes.contains(&quote)), "the quote {quote:?} is gone from ListThemes");
    assert!(server.store.theme_assignments("default").unwrap().iter().all(|r| r.response_id != id));

    // Retention from the CLI while the server runs: everything before 2100.
    let out = run_ok(&db, &["erase", "--before", "2100-01-01"]);
    assert!(out.starts_with(&format!("erased {} responses", responses - 1)), "{out}");
    assert_eq!(server.store.count_responses("default").unwrap(), 0);
    let themes = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner().themes;
    assert!(themes.iter().all(|t| t.quotes.is_empty()), "no quote outlives its response");
    server.shutdown().await;
}

/// A report archived by `serve --report-dir` quotes verbatims: erasing a response through gRPC
/// deletes the workspace's archived reports whose period may hold it (and only those), and so does
/// `verbatim erase --report-dir` for an account.
#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_deletes_the_archived_reports_that_may_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let csv = dir.path().join("responses.csv");
    let old = ["Jane in billing charged my card twice for one invoice.", "The delivery was three weeks late and the box was crushed."];
    std::fs::write(
        &csv,
        format!(
            "response_id,account_id,survey,score,verbatim,submitted_at\n\
             jan-1,a1,NPS,2,{},2025-01-06\n\
             jan-2,a2,NPS,8,The new dashboard is fast and clear.,2025-01-07\n\
             mar-1,a2,NPS,3,{},2025-03-03\n\
             mar-2,a3,NPS,9,Support answered within minutes.,2025-03-04\n",
            old[0], old[1]
        ),
    )
    .unwrap();
    run_ok(&db, &["import", csv.to_str().unwrap()]);
    run_ok(&db, &["recluster", "--since", "2025-01-01", "--k", "2"]);
    // The archive as serve writes it: the 28-day report of each day, named WORKSPACE-DAY.html.
    let archive = dir.path().join("reports");
    std::fs::create_dir(&archive).unwrap();
    let report = |name: &str, until: &str| {
        let path = archive.join(name);
        run_ok(&db, &["report", "--period", "28d", "--until", until, "--output", path.to_str().unwrap()]);
        std::fs::read_to_string(path).unwrap()
    };
    assert!(report("default-2025-01-10.html", "2025-01-10").contains("charged my card twice"), "the January report quotes jan-1");
    assert!(report("default-2025-03-05.html", "2025-03-05").contains("three weeks late"), "the March report quotes mar-1");
    report("default-2025-02-20.html", "2025-02-20");
    std::fs::write(archive.join("beta-2025-01-10.html"), "another workspace's report").unwrap();
    let left = || {
        let mut names: Vec<String> = std::fs::read_dir(&archive).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };

    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(verbatim::store::SqliteStore::open(&db).unwrap());
    let settings = verbatim::report::archive::Archive { dir: archive.clone(), period: std::time::Duration::from_secs(28 * 86_400), keep: None };
    let server = crate::common::TestServer::start_with_archive(store, 256, Some(settings)).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();
    let reply = client.erase_responses(EraseResponsesRequest { response_ids: vec!["jan-1".into()], ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((reply.responses, reply.archived_reports), (1, 1), "{reply:?}");
    assert_eq!(left(), ["beta-2025-01-10.html", "default-2025-02-20.html", "default-2025-03-05.html"]);
    let reply = client.erase_responses(EraseResponsesRequest { response_ids: vec!["never-stored".into()], ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((reply.responses, reply.archived_reports), (0, 0), "nothing erased, no report deleted");
    server.shutdown().await;

    let out = run_ok(&db, &["erase", "--account", "a2", "--report-dir", archive.to_str().unwrap()]);
    assert!(out.contains("erased 2 responses") && out.contains("deleted archived report"), "{out}");
    // a2 answered on 2025-01-07 and 2025-03-03: the March report may quote the second; February's
    // period (01-23 to 02-20) lies between the two and holds neither, so it stays.
    assert_eq!(left(), ["beta-2025-01-10.html", "default-2025-02-20.html"], "only the reports whose period holds one of a2's responses go");
}

/// `verbatim serve --retention 30d` as a process: at start it erases what is older, in every
/// workspace, and keeps the rest.
#[cfg(unix)]
#[test]
fn serve_applies_its_retention_policy_at_start() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let recent = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let csv = dir.path().join("responses.csv");
    std::fs::write(
        &csv,
        format!(
            "response_id,account_id,survey,score,verbatim,submitted_at\n\
             old-1,a1,NPS,3,The invoice was wrong.,2020-01-06\n\
             old-2,a2,NPS,9,Great support.,2021-03-01\n\
             new-1,a3,NPS,6,Delivery was late.,{recent}\n"
        ),
    )
    .unwrap();
    run_ok(&db, &["import", csv.to_str().unwrap()]);
    run_ok(&db, &["--workspace", "beta", "import", csv.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .arg("--db")
        .arg(&db)
        .arg("--model-dir")
        .arg(crate::common::model_dir())
        .args(["serve", "--listen", "127.0.0.1:0", "--retention", "30d"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .take_while(|l| !l.contains("retention run done"))
        .collect();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(log.iter().any(|l| l.contains("workspace=beta") && l.contains("erased 2 responses")), "{log:?}");
    let store = verbatim::store::SqliteStore::open(&db).unwrap();
    for workspace in ["default", "beta"] {
        assert!(store.get_response(workspace, "old-1").unwrap().is_none() && store.get_response(workspace, "old-2").unwrap().is_none());
        assert!(store.get_response(workspace, "new-1").unwrap().is_some(), "{workspace}: the recent response stays");
    }
}
