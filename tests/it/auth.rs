//! API tokens against a real server and a real SQLite file: tokens made and revoked with the CLI
//! while the server runs, each call decided by the token's workspace and scopes.

use std::path::Path;
use std::process::Command;

use tonic::{Code, Request};
use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{AnalyzeTextRequest, EraseResponsesRequest, ListThemesRequest, ReclusterRequest, SurveyResponse, SurveyType, ThemeReportRequest};
use verbatim::grpc::{AUTHORIZATION_HEADER, WORKSPACE_HEADER};

use crate::common::{encoder, model_dir, TestServer};
use crate::themes::{run_ok, verbatim_cmd};

fn response(id: &str) -> SurveyResponse {
    SurveyResponse {
        response_id: id.into(),
        account_id: "acct-1".into(),
        survey: SurveyType::Nps as i32,
        score: 4.0,
        scale: None,
        verbatim: "Still waiting for a refund.".into(),
        submitted_at: "2026-11-02T09:30:00Z".into(),
        attributes: Default::default(),
    }
}

/// `message` sent with `authorization: Bearer <secret>` (and `x-verbatim-workspace` when given).
fn with_token<T>(message: T, secret: &str, workspace: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(AUTHORIZATION_HEADER, format!("Bearer {secret}").parse().unwrap());
    if let Some(w) = workspace {
        request.metadata_mut().insert(WORKSPACE_HEADER, w.parse().unwrap());
    }
    request
}

fn create_token(db: &Path, workspace: &str, name: &str, scope: &str) -> String {
    let secret = run_ok(db, &["--workspace", workspace, "tokens", "create", "--name", name, "--scope", scope]).trim().to_string();
    assert!(secret.starts_with("vbt_") && !secret.contains(char::is_whitespace), "stdout is the secret alone: {secret:?}");
    secret
}

fn expect_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: Code, words: &[&str]) {
    let status = result.expect_err("the call is refused");
    assert_eq!(status.code(), code, "{status:?}");
    for w in words {
        assert!(status.message().contains(w), "{w:?} not in {:?}", status.message());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_decide_each_calls_workspace_and_what_it_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("verbatim.db");
    let server = TestServer::start_with_db(&db, 1024).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();

    // No token exists yet: a loopback server in `auto` mode is open.
    client.submit_response(response("before")).await.expect("open until a token exists");

    // Tokens made with the CLI while the server runs apply from the next call on.
    let ingest = create_token(&db, "acme", "survey-platform", "ingest");
    let read = create_token(&db, "acme", "cx-team", "read");
    let listed = run_ok(&db, &["--workspace", "acme", "tokens", "list"]);
    assert!(listed.contains("survey-platform") && listed.contains("cx-team") && !listed.contains(&ingest[4..]), "{listed}");

    expect_denied(client.submit_response(response("anonymous")).await, Code::Unauthenticated, &["authorization", "verbatim tokens create"]);
    let stream = tokio_stream::iter([response("anonymous-stream")]);
    expect_denied(client.submit_responses(stream).await, Code::Unauthenticated, &["authorization"]);
    expect_denied(client.analyze_text(AnalyzeTextRequest { texts: vec!["hi".into()], include_embeddings: false }).await, Code::Unauthenticated, &[]);
    expect_denied(client.submit_response(with_token(response("forged"), "vbt_0123", None)).await, Code::Unauthenticated, &["unknown or revoked"]);

    // The ingest token writes into its own workspace, and only there.
    client.submit_response(with_token(response("r-1"), &ingest, None)).await.expect("ingest may submit");
    client.submit_response(with_token(response("r-2"), &ingest, Some("acme"))).await.expect("naming its own workspace is fine");
    expect_denied(
        client.submit_response(with_token(response("r-3"), &ingest, Some("default"))).await,
        Code::PermissionDenied,
        &["x-verbatim-workspace", "\"acme\""],
    );
    expect_denied(client.get_theme_report(with_token(ThemeReportRequest::default(), &ingest, None)).await, Code::PermissionDenied, &["scopes [ingest]", "needs scope read"]);
    expect_denied(client.recluster(with_token(ReclusterRequest::default(), &read, None)).await, Code::PermissionDenied, &["needs scope admin"]);
    expect_denied(client.submit_response(with_token(response("r-4"), &read, None)).await, Code::PermissionDenied, &["needs scope ingest"]);
    let dry_run = with_token(tokio_stream::iter([response("r-4")]), &read, None);
    expect_denied(client.validate_responses(dry_run).await, Code::PermissionDenied, &["needs scope ingest"]);
    client.get_theme_report(with_token(ThemeReportRequest::default(), &read, None)).await.expect("read may read reports");
    // Erasing by id is ingest's; by account or age, admin's (checked before the request is read).
    let by_account = EraseResponsesRequest { account_id: "acct-1".into(), ..Default::default() };
    expect_denied(client.erase_responses(with_token(by_account, &ingest, None)).await, Code::PermissionDenied, &["needs scope admin"]);
    expect_denied(client.erase_responses(EraseResponsesRequest::default()).await, Code::Unauthenticated, &["authorization"]);
    let by_id = EraseResponsesRequest { response_ids: vec!["never-stored".into()], ..Default::default() };
    assert_eq!(client.erase_responses(with_token(by_id, &ingest, None)).await.unwrap().into_inner().responses, 0);
    client.list_themes(with_token(ListThemesRequest::default(), &read, None)).await.expect("read may list themes");
    assert_eq!(server.store.count_responses("acme").unwrap(), 2, "r-1 and r-2, nothing refused");
    assert_eq!(server.store.count_responses("default").unwrap(), 1, "only the call made before any token");

    // Revoked with the CLI: refused at once; the server keeps serving the others.
    run_ok(&db, &["--workspace", "acme", "tokens", "revoke", "survey-platform"]);
    expect_denied(client.submit_response(with_token(response("r-5"), &ingest, None)).await, Code::Unauthenticated, &["unknown or revoked"]);
    client.list_themes(with_token(ListThemesRequest::default(), &read, None)).await.expect("other tokens still work");
    assert_eq!(server.store.count_responses("acme").unwrap(), 2);

    // `tokens list` says which tokens are in use, and since when they are not.
    let listed = run_ok(&db, &["--workspace", "acme", "tokens", "list"]);
    let line = |name: &str| listed.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {listed}")).to_string();
    let times = |l: String| l.split_whitespace().filter(|f| f.len() == 20 && f.starts_with("20") && f.ends_with('Z')).count();
    assert!(line("cx-team").contains(" active ") && times(line("cx-team")) == 2, "created and last used: {listed}");
    assert!(line("survey-platform").contains(" revoked ") && times(line("survey-platform")) == 3, "created, last used, revoked: {listed}");

    // A token made to expire is refused from then on, and the refusal says why.
    let out = verbatim_cmd(&db, &["--workspace", "acme", "tokens", "create", "--name", "trial", "--scope", "read", "--expires-in", "2s"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("expires 20"), "{}", String::from_utf8_lossy(&out.stderr));
    let trial = String::from_utf8(out.stdout).unwrap().trim().to_string();
    client.list_themes(with_token(ListThemesRequest::default(), &trial, None)).await.expect("before its expiry");
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    expect_denied(client.list_themes(with_token(ListThemesRequest::default(), &trial, None)).await, Code::Unauthenticated, &["\"trial\"", "expired at"]);
    assert!(run_ok(&db, &["--workspace", "acme", "tokens", "list"]).lines().any(|l| l.starts_with("trial") && l.contains(" expired ")));

    // With every token revoked the server stays closed: `auto` does not fall back to open.
    run_ok(&db, &["--workspace", "acme", "tokens", "revoke", "cx-team"]);
    run_ok(&db, &["--workspace", "acme", "tokens", "revoke", "trial"]);
    expect_denied(client.submit_response(response("after-revoking-all")).await, Code::Unauthenticated, &["authorization"]);

    // Health stays open for load balancers.
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest};
    let channel = tonic::transport::Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    let status = health.check(HealthCheckRequest { service: "verbatim.v1.Verbatim".into() }).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::Serving as i32);
    server.shutdown().await;
}

#[test]
fn serve_will_not_open_every_workspace_to_the_network() {
    encoder(); // fetch the model once, before a child process looks for it
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .arg("--db")
        .arg(dir.path().join("verbatim.db"))
        .arg("--model-dir")
        .arg(model_dir())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an open server on 0.0.0.0 must not start: {stderr}");
    assert!(stderr.contains("refusing to serve on 0.0.0.0:0 without API tokens") && stderr.contains("--auth off"), "{stderr}");
}
