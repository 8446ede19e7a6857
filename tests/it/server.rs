//! The gRPC front door against a real server: AnalyzeText, health, reflection, bad input,
//! backpressure, metrics and graceful shutdown.

use tokio_stream::StreamExt;
use tonic::Code;
use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::AnalyzeTextRequest;

use crate::common::{cosine, encoder, TestServer};

async fn client(server: &TestServer) -> VerbatimClient<tonic::transport::Channel> {
    VerbatimClient::connect(server.url()).await.unwrap().max_decoding_message_size(64 << 20)
}

fn request(texts: &[&str], include_embeddings: bool) -> AnalyzeTextRequest {
    AnalyzeTextRequest { texts: texts.iter().map(|t| t.to_string()).collect(), include_embeddings }
}

#[tokio::test(flavor = "multi_thread")]
async fn analyze_text_returns_segments_with_unit_embeddings() {
    let server = TestServer::start(1024).await;
    let mut client = client(&server).await;
    let reply = client
        .analyze_text(request(&["Love the app. Support took 3 days!!! 😡", "love the product, support is slow"], true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.model, "sentence-transformers/all-MiniLM-L6-v2");
    let texts: Vec<Vec<&str>> = reply.results.iter().map(|r| r.segments.iter().map(|s| s.text.as_str()).collect()).collect();
    assert_eq!(texts, [vec!["Love the app.", "Support took 3 days!!! 😡"], vec!["love the product", "support is slow"]]);
    let direct = encoder().embed(&["Support took 3 days!!! 😡"]).unwrap().remove(0).vector;
    for segment in reply.results.iter().flat_map(|r| &r.segments) {
        assert_eq!(segment.embedding.len(), 384);
        let norm: f32 = segment.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        assert!(segment.tokens >= 3);
    }
    assert!(cosine(&reply.results[0].segments[1].embedding, &direct) > 0.99999);

    let without = client.analyze_text(request(&["Fine."], false)).await.unwrap().into_inner();
    assert_eq!(without.results[0].segments.len(), 1);
    assert!(without.results[0].segments[0].embedding.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_serving_and_reflection_lists_the_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let server = TestServer::start(1024).await;
    let channel = tonic::transport::Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "verbatim.v1.Verbatim"] {
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "health of {service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let ask = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
    let mut replies = reflection.server_reflection_info(tokio_stream::iter([ask])).await.unwrap().into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else { panic!("unexpected {reply:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "verbatim.v1.Verbatim"), "{names:?}");
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let server = TestServer::start(4096).await;
    let mut client = client(&server).await;

    let empty = client.analyze_text(request(&[], false)).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().contains("texts") && empty.message().contains("1–256"), "{}", empty.message());

    let too_many = vec!["x"; 257];
    let err = client.analyze_text(request(&too_many, false)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("257") && err.message().contains("256"), "{}", err.message());

    let blank = client.analyze_text(request(&["", "   "], true)).await.unwrap().into_inner();
    assert!(blank.results.iter().all(|r| r.segments.is_empty() && !r.truncated));

    let huge = "The export keeps timing out on large files. ".repeat(24_000); // ~1 MB
    assert!(huge.len() > 1_000_000);
    let reply = client.analyze_text(request(&[&huge], true)).await.unwrap().into_inner();
    assert!(reply.results[0].truncated);
    assert_eq!(reply.results[0].segments.len(), verbatim::text::MAX_SEGMENTS);

    let long_sentence = "word ".repeat(2_000);
    let reply = client.analyze_text(request(&[&long_sentence], true)).await.unwrap().into_inner();
    assert_eq!(reply.results[0].segments[0].tokens, 256, "one segment is truncated at 256 tokens");

    let ok = client.analyze_text(request(&["Still works."], true)).await.unwrap().into_inner();
    assert_eq!(ok.results[0].segments.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_resource_exhausted_then_recovers() {
    // A queue of 4 texts: a request of 64 segments fills it while it is being encoded.
    let server = TestServer::start(4).await;
    let mut busy_client = client(&server).await;
    let big: Vec<String> = (0..64).map(|i| format!("Segment number {i} talks about slow exports and billing.")).collect();
    let busy = tokio::spawn(async move {
        busy_client.analyze_text(AnalyzeTextRequest { texts: big, include_embeddings: false }).await
    });
    while server.infer.available() > 0 {
        tokio::task::yield_now().await;
    }
    let mut other = client(&server).await;
    let refused = other.analyze_text(request(&["Hello there."], false)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("queue is full"));
    busy.await.unwrap().unwrap();
    let ok = other.analyze_text(request(&["Hello again."], false)).await.unwrap();
    assert_eq!(ok.into_inner().results[0].segments.len(), 1);
}

/// `GET path` on `addr` over plain HTTP/1.1: (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    http_get_with(addr, path, "").await
}

/// The same with extra header lines (each ending in CRLF).
async fn http_get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n{headers}\r\n").as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_every_call_by_method_and_code_and_the_encoder_queue() {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let server = TestServer::start(512).await;
    let endpoint = server.start_metrics_endpoint(None).await;
    let mut client = client(&server).await;
    client.analyze_text(request(&["Love the app. Support took 3 days!"], false)).await.unwrap();
    client.analyze_text(request(&["Fine."], false)).await.unwrap();
    assert_eq!(client.analyze_text(request(&[], false)).await.unwrap_err().code(), Code::InvalidArgument);
    let channel = tonic::transport::Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await.unwrap();
    // A method nobody serves is counted, under "unknown".
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/verbatim.v1.Verbatim/NoSuchMethod");
    let codec = tonic_prost::ProstCodec::<verbatim::grpc::pb::AnalyzeTextRequest, verbatim::grpc::pb::AnalyzeTextResponse>::default();
    let unknown = grpc.unary(tonic::Request::new(request(&["x"], false)), path, codec).await.unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);

    let (status, text) = http_get(endpoint, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.rsplit_once(' ').is_some_and(|(name, _)| name == series)).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit_once(' ').unwrap().1.parse().unwrap()
    };
    let analyze = r#"grpc_service="verbatim.v1.Verbatim",grpc_method="AnalyzeText""#;
    assert_eq!(value(&format!("grpc_server_handled_total{{{analyze},grpc_code=\"OK\"}}")), 2.0);
    assert_eq!(value(&format!("grpc_server_handled_total{{{analyze},grpc_code=\"InvalidArgument\"}}")), 1.0);
    assert_eq!(value(&format!("grpc_server_handling_seconds_count{{{analyze}}}")), 3.0);
    assert_eq!(value(&format!("grpc_server_handling_seconds_bucket{{{analyze},le=\"+Inf\"}}")), 3.0);
    assert!(value(&format!("grpc_server_handling_seconds_sum{{{analyze}}}")) > 0.0);
    assert_eq!(value(r#"grpc_server_handled_total{grpc_service="grpc.health.v1.Health",grpc_method="Check",grpc_code="OK"}"#), 1.0);
    assert_eq!(value(r#"grpc_server_handled_total{grpc_service="unknown",grpc_method="unknown",grpc_code="Unimplemented"}"#), 1.0);
    assert!(!text.contains("NoSuchMethod"));
    // Three segments embedded; nothing queued or in flight now; the configured capacity.
    assert_eq!(value("verbatim_encoder_texts_total"), 3.0);
    assert_eq!(value("verbatim_encoder_queue_texts"), 0.0);
    assert_eq!(value("verbatim_encoder_queue_capacity"), 512.0);
    assert_eq!(value("verbatim_grpc_calls_in_flight"), 0.0);

    // A caller whose deadline passes mid-call: counted as Canceled once the server lets it go.
    let long: Vec<String> = (0..200).map(|i| format!("Call {i}: the export to the data warehouse times out every night and support has not replied in a week.")).collect();
    let mut hurried = tonic::Request::new(AnalyzeTextRequest { texts: long, include_embeddings: false });
    hurried.set_timeout(std::time::Duration::from_millis(20));
    assert!(client.analyze_text(hurried).await.is_err());
    let canceled = format!("grpc_server_handled_total{{{analyze},grpc_code=\"Canceled\"}} 1");
    let mut seen = String::new();
    for _ in 0..100 {
        seen = http_get(endpoint, "/metrics").await.1;
        if seen.contains(&canceled) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen.contains(&canceled), "{seen}");

    // Anything but GET /metrics is refused with a status that says so; the server keeps serving.
    assert_eq!(http_get(endpoint, "/").await.0, "HTTP/1.1 404 Not Found");
    client.analyze_text(request(&["Still works."], false)).await.unwrap();
    let (_, again) = http_get(endpoint, "/metrics?x=1").await;
    assert!(again.contains(&format!("grpc_server_handled_total{{{analyze},grpc_code=\"OK\"}} 3")), "{again}");
    assert!(again.contains("verbatim_grpc_calls_in_flight 0"), "{again}");

    // With a token (`--metrics-token-file`): no header, another scheme or another secret gets 401
    // and no series; the right bearer gets the same metrics.
    let guarded = server.start_metrics_endpoint(Some("scrape-me-9f3a")).await;
    for headers in ["", "Authorization: Basic c2NyYXBlLW1lLTlmM2E=\r\n", "Authorization: Bearer scrape-me-9f3b\r\n", "Authorization: Bearer scrape-me-9f3a-and-more\r\n"] {
        let (status, body) = http_get_with(guarded, "/metrics", headers).await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{headers:?}");
        assert!(!body.contains("grpc_server_handled_total") && body.contains("Bearer"), "{body}");
    }
    let (status, body) = http_get_with(guarded, "/metrics", "authorization: Bearer scrape-me-9f3a\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains(&format!("grpc_server_handled_total{{{analyze},grpc_code=\"OK\"}} 3")), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_finishes_in_flight_calls() {
    let mut server = TestServer::start(1024).await;
    let mut c = client(&server).await;
    let texts: Vec<String> = (0..128).map(|i| format!("Message {i}: the mobile app logs me out every day.")).collect();
    let call = tokio::spawn(async move { c.analyze_text(AnalyzeTextRequest { texts, include_embeddings: true }).await });
    // Wait until the call is inside the encoder queue, then ask the server to stop.
    while server.infer.available() == 1024 {
        tokio::task::yield_now().await;
    }
    server.request_shutdown();
    let reply = call.await.unwrap().expect("the in-flight call completes").into_inner();
    assert_eq!(reply.results.len(), 128);
    server.handle.take().unwrap().await.unwrap().unwrap();
    assert!(VerbatimClient::connect(server.url()).await.is_err(), "the server no longer accepts connections");
}
