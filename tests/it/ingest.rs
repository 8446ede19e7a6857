//! Responses in, against a real server and a real SQLite file: durability across restarts,
//! idempotency, concurrency, backpressure, bad input, workspaces, streaming and accounts.

use tonic::{Code, Request};
use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{self, AnalyzeTextRequest, GetResponseRequest, SurveyResponse, SurveyType, WriteResult};
use verbatim::grpc::WORKSPACE_HEADER;

use crate::common::TestServer;

type Client = VerbatimClient<tonic::transport::Channel>;

async fn client(server: &TestServer) -> Client {
    VerbatimClient::connect(server.url()).await.unwrap()
}

fn response(id: &str, score: f64, verbatim: &str) -> SurveyResponse {
    SurveyResponse {
        response_id: id.into(),
        account_id: "acct-1".into(),
        survey: SurveyType::Nps as i32,
        score,
        scale: None,
        verbatim: verbatim.into(),
        submitted_at: "2026-11-02T09:30:00Z".into(),
        attributes: [("plan".to_string(), "enterprise".to_string())].into(),
    }
}

fn in_workspace<T>(message: T, workspace: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(WORKSPACE_HEADER, workspace.parse().unwrap());
    request
}

async fn get(client: &mut Client, id: &str) -> Result<pb::SubmitResponseReply, tonic::Status> {
    client.get_response(GetResponseRequest { response_id: id.into() }).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_submitted_response_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("verbatim.db");
    let server = TestServer::start_with_db(&db, 1024).await;
    let mut c = client(&server).await;
    let reply = c
        .submit_response(response("r-1", 3.0, "Love the product, support is slow. Billing page is confusing!"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.write(), WriteResult::Inserted);
    assert_eq!(reply.category, "detractor");
    assert!(reply.needs_follow_up);
    assert_eq!(reply.segments.len(), 3);
    assert!(reply.themes_status.contains("no theme model yet"), "{}", reply.themes_status);
    server.shutdown().await;

    let restarted = TestServer::start_with_db(&db, 1024).await;
    let mut c = client(&restarted).await;
    let stored = get(&mut c, "r-1").await.unwrap();
    let texts: Vec<&str> = stored.segments.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, ["Love the product", "support is slow.", "Billing page is confusing!"]);
    assert_eq!(stored.category, "detractor");
    let row = restarted.store.get_response("default", "r-1").unwrap().unwrap();
    assert_eq!(row.record.attributes["plan"], "enterprise");
    assert!(row.segments.iter().all(|s| s.embedding.len() == 384), "embeddings are stored for the recluster");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_response_id_is_never_stored_twice() {
    let server = TestServer::start(1024).await;
    let mut c = client(&server).await;
    let first = c.submit_response(response("r-1", 9.0, "Great onboarding.")).await.unwrap().into_inner();
    let again = c.submit_response(response("r-1", 9.0, "Great onboarding.")).await.unwrap().into_inner();
    assert_eq!((first.write(), again.write()), (WriteResult::Inserted, WriteResult::Unchanged));
    assert_eq!(first.segments, again.segments);
    let changed = c.submit_response(response("r-1", 4.0, "Onboarding was fine. Invoices are wrong.")).await.unwrap().into_inner();
    assert_eq!(changed.write(), WriteResult::Updated);
    assert_eq!((changed.category.as_str(), changed.segments.len()), ("detractor", 2));
    assert_eq!(server.store.count_responses("default").unwrap(), 1);
    assert_eq!(server.store.count_segments("default").unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_concurrent_clients_are_all_answered_and_stored_once() {
    let server = TestServer::start(verbatim::infer::DEFAULT_QUEUE_CAPACITY).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        let mut c = client(&server).await;
        calls.spawn(async move {
            let mut acknowledged = 0;
            for j in 0..3 {
                // The third call resubmits the first: it must not add a row.
                let id = format!("c{i}-r{}", j % 2);
                let text = format!("Client {i}: the dashboard is slow. Exports fail on Mondays.");
                let reply = c.submit_response(response(&id, (i % 11) as f64, &text)).await.unwrap().into_inner();
                acknowledged += (reply.write() == WriteResult::Inserted) as u64;
            }
            acknowledged
        });
    }
    let mut acknowledged = 0;
    while let Some(n) = calls.join_next().await {
        acknowledged += n.unwrap();
    }
    assert_eq!(acknowledged, 128);
    assert_eq!(server.store.count_responses("default").unwrap(), acknowledged);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_refuses_with_resource_exhausted_loses_nothing_and_recovers() {
    let server = TestServer::start(4).await;
    let mut busy = client(&server).await;
    let big: Vec<String> = (0..64).map(|i| format!("Sentence {i} about a slow export.")).collect();
    let hold = tokio::spawn(async move { busy.analyze_text(AnalyzeTextRequest { texts: big, include_embeddings: false }).await });
    while server.infer.available() > 0 {
        tokio::task::yield_now().await;
    }
    let mut c = client(&server).await;
    let refused = c.submit_response(response("r-full", 2.0, "The app crashes on login.")).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert_eq!(get(&mut c, "r-full").await.unwrap_err().code(), Code::NotFound, "a refused call stores nothing");
    hold.await.unwrap().unwrap();
    let ok = c.submit_response(response("r-full", 2.0, "The app crashes on login.")).await.unwrap().into_inner();
    assert_eq!(ok.write(), WriteResult::Inserted);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_field_and_stores_nothing() {
    let server = TestServer::start(1024).await;
    let mut c = client(&server).await;
    let cases: Vec<(SurveyResponse, &str, &str)> = vec![
        (response("r", 11.0, "x"), "score", "outside the NPS scale 0–10"),
        (SurveyResponse { survey: 9, ..response("r", 5.0, "x") }, "survey", "NPS, CSAT or CES"),
        (SurveyResponse { survey: 0, ..response("r", 5.0, "x") }, "survey", "required"),
        (response("", 5.0, "x"), "response_id", "required"),
        (SurveyResponse { account_id: " ".into(), ..response("r", 5.0, "x") }, "account_id", "required"),
        (
            SurveyResponse { survey: SurveyType::Csat as i32, scale: Some(pb::Scale { min: 5, max: 5 }), ..response("r", 5.0, "x") },
            "scale_min",
            "below scale_max",
        ),
        (SurveyResponse { submitted_at: "yesterday-ish".into(), ..response("r", 5.0, "x") }, "submitted_at", "RFC 3339"),
    ];
    for (request, field, detail) in cases {
        let status = c.submit_response(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(&format!("{field}:")), "{field}: {}", status.message());
        assert!(status.message().contains(detail), "{detail}: {}", status.message());
    }
    assert_eq!(server.store.count_responses("default").unwrap(), 0);

    let huge = "The invoice export times out every single time I try it. ".repeat(18_000);
    assert!(huge.len() > 1_000_000);
    let reply = c.submit_response(response("r-huge", 2.0, &huge)).await.unwrap().into_inner();
    assert!(reply.truncated);
    assert_eq!(reply.segments.len(), verbatim::text::MAX_SEGMENTS);

    let empty = c.submit_response(response("r-empty", 10.0, "")).await.unwrap().into_inner();
    assert_eq!((empty.write(), empty.segments.len(), empty.category.as_str()), (WriteResult::Inserted, 0, "promoter"));
    let csat = SurveyResponse { survey: SurveyType::Csat as i32, scale: Some(pb::Scale { min: 1, max: 10 }), ..response("r-csat", 9.0, "ok") };
    assert_eq!(c.submit_response(csat).await.unwrap().into_inner().category, "satisfied");
    assert_eq!(server.store.count_responses("default").unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn workspaces_are_isolated() {
    let server = TestServer::start(1024).await;
    let mut c = client(&server).await;
    c.submit_response(in_workspace(response("r-1", 8.0, "Solid."), "acme")).await.unwrap();
    assert!(c.get_response(in_workspace(GetResponseRequest { response_id: "r-1".into() }, "acme")).await.is_ok());
    let other = c.get_response(in_workspace(GetResponseRequest { response_id: "r-1".into() }, "globex")).await.unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let bad = c.submit_response(in_workspace(response("r-2", 8.0, "x"), "no spaces allowed")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("workspace:"), "{}", bad.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_of_responses_reports_bad_items_and_stores_the_rest() {
    let server = TestServer::start(64).await;
    let mut c = client(&server).await;
    let items: Vec<SurveyResponse> = (0..40)
        .map(|i| match i {
            7 => response("s-7", 12.0, "bad score"),
            21 => response("", 5.0, "no id"),
            _ => response(&format!("s-{i}"), (i % 11) as f64, "The mobile app is great. Sync is slow."),
        })
        .collect();
    // The dry run answers as the submission then does, and writes nothing.
    let dry = c.validate_responses(tokio_stream::iter(items.clone())).await.unwrap().into_inner();
    assert_eq!(server.store.count_responses("default").unwrap(), 0, "ValidateResponses writes nothing");
    let summary = c.submit_responses(tokio_stream::iter(items.clone())).await.unwrap().into_inner();
    assert_eq!((summary.received, summary.inserted), (40, 38));
    let rejected: Vec<(u64, &str)> = summary.rejected.iter().map(|r| (r.index, r.id.as_str())).collect();
    assert_eq!(rejected, [(7, "s-7"), (21, "")]);
    assert!(summary.rejected[0].reason.starts_with("score:"));
    assert_eq!(dry, summary);
    assert_eq!(server.store.count_responses("default").unwrap(), 38);

    // Against what is stored: a resent response is unchanged, an edited one updated, and a response
    // id repeated in the stream is compared with its earlier item.
    let again = vec![response("s-0", 0.0, "The mobile app is great. Sync is slow."), response("s-1", 1.0, "Sync is fixed."), response("s-new", 9.0, "Fast."), response("s-new", 9.0, "Fast.")];
    let dry = c.validate_responses(tokio_stream::iter(again.clone())).await.unwrap().into_inner();
    assert_eq!((dry.received, dry.inserted, dry.updated, dry.unchanged), (4, 1, 1, 2));
    assert!(server.store.get_response("default", "s-new").unwrap().is_none(), "ValidateResponses writes nothing");
    assert_eq!(c.submit_responses(tokio_stream::iter(again)).await.unwrap().into_inner(), dry);
}

/// Items are written many at once, but two of one response id in the order they came: a stream
/// that sends a response and then its correction stores the correction.
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_repeats_a_response_id_stores_its_later_item() {
    let server = TestServer::start(256).await;
    let mut c = client(&server).await;
    let items: Vec<SurveyResponse> = (0..30)
        .flat_map(|i| {
            let id = format!("c-{i}");
            [response(&id, 2.0, &format!("Ticket {i} waited a week for an answer.")), response(&id, 9.0, &format!("Ticket {i} was answered within the hour."))]
        })
        .collect();
    let summary = c.submit_responses(tokio_stream::iter(items)).await.unwrap().into_inner();
    assert_eq!((summary.received, summary.inserted, summary.updated), (60, 30, 30));
    for i in 0..30 {
        let stored = server.store.get_response("default", &format!("c-{i}")).unwrap().unwrap();
        assert_eq!((stored.record.score, stored.record.verbatim), (9.0, format!("Ticket {i} was answered within the hour.")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_and_outcomes_are_all_or_none() {
    let server = TestServer::start(16).await;
    let mut c = client(&server).await;
    let account = |id: &str, arr: f64| pb::Account { account_id: id.into(), arr, churned_at: String::new(), attributes: Default::default() };
    let bad = c.upsert_accounts(pb::UpsertAccountsRequest { accounts: vec![account("a", 10.0), account("b", -1.0)], validate_only: false }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("accounts[1]: arr:"), "{}", bad.message());
    assert!(server.store.get_account("default", "a").unwrap().is_none(), "nothing half-written");

    let bad = c.upsert_accounts(pb::UpsertAccountsRequest { accounts: vec![account("b", -1.0)], validate_only: true }).await.unwrap_err();
    assert!(bad.message().starts_with("accounts[0]: arr:"), "a dry run rejects as the upsert does: {}", bad.message());
    let batch = pb::UpsertAccountsRequest { accounts: vec![account("a", 10.0), account("b", 20.0)], validate_only: false };
    let dry = c.upsert_accounts(pb::UpsertAccountsRequest { validate_only: true, ..batch.clone() }).await.unwrap().into_inner();
    assert_eq!((dry.inserted, dry.updated, dry.unchanged), (2, 0, 0));
    assert!(server.store.get_account("default", "a").unwrap().is_none(), "validate_only writes nothing");
    let ok = c.upsert_accounts(batch).await.unwrap().into_inner();
    assert_eq!((ok.inserted, ok.updated, ok.unchanged), (dry.inserted, dry.updated, dry.unchanged));
    let again = pb::UpsertAccountsRequest { accounts: vec![account("a", 10.0), account("b", 25.0), account("c", 5.0)], validate_only: true };
    let dry = c.upsert_accounts(again).await.unwrap().into_inner();
    assert_eq!((dry.inserted, dry.updated, dry.unchanged), (1, 1, 1));
    assert_eq!(server.store.get_account("default", "b").unwrap().unwrap().arr, 20.0, "validate_only writes nothing");
    let churn = pb::Outcome { account_id: "b".into(), r#type: pb::OutcomeType::Churn as i32, occurred_at: "2026-11-20".into(), arr_change: None };
    let missing_time = pb::Outcome { occurred_at: String::new(), ..churn.clone() };
    let err = c.record_outcomes(pb::RecordOutcomesRequest { outcomes: vec![churn.clone(), missing_time], validate_only: false }).await.unwrap_err();
    assert!(err.message().starts_with("outcomes[1]: occurred_at:"), "{}", err.message());
    let batch = pb::RecordOutcomesRequest { outcomes: vec![churn.clone(), churn], validate_only: false };
    let dry = c.record_outcomes(pb::RecordOutcomesRequest { validate_only: true, ..batch.clone() }).await.unwrap().into_inner();
    assert_eq!((dry.inserted, dry.unchanged, dry.updated), (1, 1, 0));
    assert!(server.store.list_outcomes("default").unwrap().is_empty(), "validate_only writes nothing");
    let done = c.record_outcomes(batch).await.unwrap().into_inner();
    assert_eq!((done.inserted, done.unchanged, done.updated), (dry.inserted, dry.unchanged, dry.updated));
    assert!(server.store.get_account("default", "b").unwrap().unwrap().churned_at.is_some());
}
