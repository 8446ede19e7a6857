//! What a serving process has done, for Prometheus: every gRPC call by service, method and status
//! code with its latency (the names and labels of go-grpc-prometheus, so existing dashboards read
//! them), and the encoder queue. `verbatim serve --metrics-listen ADDR` answers `GET /metrics` in
//! the Prometheus text format (0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::codegen::http;

use crate::infer::Infer;

/// Upper bounds of the latency buckets, in seconds: from a health check to a recluster.
pub const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// One method's latencies: counts per bucket (not cumulative), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS.len()];
        }
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// gRPC service and method of a call, from its path `/package.Service/Method`.
type Route = (String, String);

#[derive(Debug, Default)]
struct Calls {
    handled: BTreeMap<(Route, &'static str), u64>,
    latency: BTreeMap<Route, Histogram>,
}

/// The counters of one serving process (shared by the gRPC layer and the HTTP endpoint).
#[derive(Debug, Default)]
pub struct Metrics {
    calls: Mutex<Calls>,
    /// Calls started and not yet ended.
    in_flight: AtomicI64,
}

impl Metrics {
    /// Records one finished call. An unknown method (`Unimplemented`) is counted under "unknown",
    /// so callers cannot grow the label set without bound.
    pub fn observe(&self, path: &str, code: tonic::Code, elapsed: Duration) {
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or(("unknown", "unknown"));
        let route: Route = if code == tonic::Code::Unimplemented { ("unknown".into(), "unknown".into()) } else { (service.into(), method.into()) };
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls.handled.entry((route.clone(), code_name(code))).or_default() += 1;
        calls.latency.entry(route).or_default().observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of the calls so far and of the encoder's queue.
    pub fn render(&self, encoder: EncoderQueue) -> String {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let labels = |(service, method): &Route| format!("grpc_service=\"{}\",grpc_method=\"{}\"", escape(service), escape(method));
        header(&mut out, "grpc_server_handled_total", "counter", "gRPC calls completed, by service, method and status code.");
        for ((route, code), n) in &calls.handled {
            let _ = writeln!(out, "grpc_server_handled_total{{{},grpc_code=\"{code}\"}} {n}", labels(route));
        }
        header(&mut out, "grpc_server_handling_seconds", "histogram", "Time from a call's request to its response headers, by service and method.");
        for (route, h) in &calls.latency {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(&h.buckets) {
                cumulative += n;
                let _ = writeln!(out, "grpc_server_handling_seconds_bucket{{{},le=\"{bound}\"}} {cumulative}", labels(route));
            }
            let _ = writeln!(out, "grpc_server_handling_seconds_bucket{{{},le=\"+Inf\"}} {}", labels(route), h.count);
            let _ = writeln!(out, "grpc_server_handling_seconds_sum{{{}}} {}", labels(route), h.sum);
            let _ = writeln!(out, "grpc_server_handling_seconds_count{{{}}} {}", labels(route), h.count);
        }
        header(&mut out, "verbatim_grpc_calls_in_flight", "gauge", "gRPC calls started and not yet answered.");
        let _ = writeln!(out, "verbatim_grpc_calls_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        header(&mut out, "verbatim_encoder_queue_texts", "gauge", "Texts queued for the encoder or being embedded.");
        let _ = writeln!(out, "verbatim_encoder_queue_texts {}", encoder.queued);
        header(&mut out, "verbatim_encoder_queue_capacity", "gauge", "Texts the encoder queue holds before calls are refused (RESOURCE_EXHAUSTED).");
        let _ = writeln!(out, "verbatim_encoder_queue_capacity {}", encoder.capacity);
        header(&mut out, "verbatim_encoder_texts_total", "counter", "Texts embedded since the process started.");
        let _ = writeln!(out, "verbatim_encoder_texts_total {}", encoder.embedded);
        header(&mut out, "verbatim_build_info", "gauge", "The running version.");
        let _ = writeln!(out, "verbatim_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        out
    }
}

/// The encoder queue as a scrape sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderQueue {
    pub capacity: usize,
    /// Texts queued or being embedded now.
    pub queued: usize,
    /// Texts embedded since the process started.
    pub embedded: u64,
}

impl EncoderQueue {
    pub fn of(infer: &Infer) -> Self {
        Self { capacity: infer.capacity(), queued: infer.capacity().saturating_sub(infer.available()), embedded: infer.embedded_texts() }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The status code's name as gRPC spells it ("OK", "InvalidArgument", …).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// A call's status from its response headers: an error is sent "trailers-only", its `grpc-status`
/// in the headers; a reply without one is OK (a stream that fails after its headers is counted
/// as OK: none of this service's calls stream replies).
fn status_of(headers: &http::HeaderMap) -> tonic::Code {
    headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok()).map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

/// The tower layer that times and counts every call of a tonic server.
#[derive(Clone)]
pub struct MetricsLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner, metrics: Arc::clone(&self.0) }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<http::Request<B>> for MetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::start(Arc::clone(&self.metrics), request.uri().path());
        let reply = self.inner.call(request);
        Box::pin(async move {
            let mut call = call; // the whole guard lives in the future, not just its field
            let reply = reply.await;
            call.code = Some(reply.as_ref().map_or(tonic::Code::Unavailable, |r| status_of(r.headers())));
            reply
        })
    }
}

/// One call in flight; recorded when it ends, with its status, or as `Canceled` when the caller
/// went away (or its deadline passed) first and the server dropped the call.
struct Call {
    metrics: Arc<Metrics>,
    path: String,
    started: Instant,
    code: Option<tonic::Code>,
}

impl Call {
    fn start(metrics: Arc<Metrics>, path: &str) -> Self {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        Self { metrics, path: path.to_string(), started: Instant::now(), code: None }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.metrics.observe(&self.path, self.code.unwrap_or(tonic::Code::Cancelled), self.started.elapsed());
    }
}

/// Answers `GET /metrics` on `listener` until its task is aborted (HTTP/1.1, one request per
/// connection: what a Prometheus scrape needs, and nothing else). With a `bearer` secret, only a
/// request that carries `Authorization: Bearer <secret>` is answered (Prometheus:
/// `authorization: { credentials_file: … }`); any other gets 401.
pub async fn serve_http(listener: TcpListener, metrics: Arc<Metrics>, infer: Infer, bearer: Option<String>) {
    // Compared as hashes, so the time a comparison takes says nothing about the secret.
    let expected: Option<Arc<str>> = bearer.map(|secret| crate::auth::hash_secret(&secret).into());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (metrics, infer, expected) = (Arc::clone(&metrics), infer.clone(), expected.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &metrics, &infer, expected.as_deref()).await {
                        tracing::debug!(error = %e, "metrics request failed");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "metrics endpoint: accept failed"),
        }
    }
}

/// Largest request head read; a scrape's is a few hundred bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// The credentials of an `Authorization: Bearer …` header in a request head, if any.
fn bearer_credentials(head: &str) -> Option<&str> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("authorization").then(|| crate::auth::bearer_credentials(value)).flatten()
    })
}

async fn answer(mut stream: TcpStream, metrics: &Metrics, infer: &Infer, expected: Option<&str>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.map_err(|_| std::io::Error::other("request head timed out"))??;
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default().trim_end();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let authorized = expected.is_none_or(|hash| bearer_credentials(&head).is_some_and(|given| crate::auth::hash_secret(given) == hash));
    let (status, content_type, body) = match (method, path) {
        _ if !authorized => ("401 Unauthorized", "text/plain; charset=utf-8", "metrics need `Authorization: Bearer <the --metrics-token-file secret>`\n".to_string()),
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render(EncoderQueue::of(infer))),
        ("GET", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found: metrics are at /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET /metrics is served\n".to_string()),
    };
    let challenge = if authorized { "" } else { "WWW-Authenticate: Bearer realm=\"metrics\"\r\n" };
    let response = format!("HTTP/1.1 {status}\r\n{challenge}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_are_read_from_any_casing_of_the_header() {
        let head = "GET /metrics HTTP/1.1\r\nHost: x\r\nauthorization: bearer s3cret \r\n\r\n";
        assert_eq!(bearer_credentials(head), Some("s3cret"));
        assert_eq!(bearer_credentials("GET /metrics HTTP/1.1\r\nAUTHORIZATION: Bearer a b\r\n"), Some("a b"));
        assert_eq!(bearer_credentials("GET /metrics HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\n"), None);
        assert_eq!(bearer_credentials("GET /metrics HTTP/1.1\r\nX-Authorization: Bearer s3cret\r\n"), None);
        assert_eq!(bearer_credentials("GET /metrics HTTP/1.1\r\n\r\n"), None);
    }

    #[test]
    fn calls_are_counted_by_method_and_code_and_timed_in_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("/verbatim.v1.Verbatim/SubmitResponse", tonic::Code::Ok, Duration::from_millis(3));
        m.observe("/verbatim.v1.Verbatim/SubmitResponse", tonic::Code::Ok, Duration::from_millis(40));
        m.observe("/verbatim.v1.Verbatim/SubmitResponse", tonic::Code::InvalidArgument, Duration::from_secs(90));
        m.observe("/verbatim.v1.Verbatim/NoSuchMethod", tonic::Code::Unimplemented, Duration::from_millis(1));
        let calls = m.calls.lock().unwrap();
        let submit: Route = ("verbatim.v1.Verbatim".into(), "SubmitResponse".into());
        assert_eq!(calls.handled[&(submit.clone(), "OK")], 2);
        assert_eq!(calls.handled[&(submit.clone(), "InvalidArgument")], 1);
        assert_eq!(calls.handled[&(("unknown".into(), "unknown".into()), "Unimplemented")], 1, "unknown methods add no label values");
        let h = &calls.latency[&submit];
        // 3 ms in the first bucket, 40 ms in 0.05, 90 s beyond the last (only in +Inf).
        assert_eq!((h.buckets[0], h.buckets[3], h.buckets.iter().sum::<u64>(), h.count), (1, 1, 2, 3));
        assert!((h.sum - 90.043).abs() < 1e-9);
    }

    #[test]
    fn the_text_format_has_cumulative_buckets_and_every_family_typed() {
        let m = Metrics::default();
        m.observe("/grpc.health.v1.Health/Check", tonic::Code::Ok, Duration::from_millis(7));
        m.observe("/grpc.health.v1.Health/Check", tonic::Code::Ok, Duration::from_millis(300));
        let text = m.render(EncoderQueue { capacity: 4096, queued: 12, embedded: 345 });
        let route = "grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Check\"";
        for line in [
            format!("grpc_server_handled_total{{{route},grpc_code=\"OK\"}} 2"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"0.005\"}} 0"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"0.01\"}} 1"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"0.25\"}} 1"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"0.5\"}} 2"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"60\"}} 2"),
            format!("grpc_server_handling_seconds_bucket{{{route},le=\"+Inf\"}} 2"),
            format!("grpc_server_handling_seconds_count{{{route}}} 2"),
            "verbatim_encoder_queue_texts 12".into(),
            "verbatim_encoder_queue_capacity 4096".into(),
            "verbatim_encoder_texts_total 345".into(),
            "# TYPE grpc_server_handling_seconds histogram".into(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Every sample belongs to a family declared with # TYPE before it.
        let mut declared = Vec::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(declared.iter().any(|d| name == d || name.strip_prefix(d.as_str()).is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))), "{l}");
            }
        }
    }

    #[test]
    fn status_codes_come_from_trailers_only_headers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_of(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", "3".parse().unwrap());
        assert_eq!(status_of(&headers), tonic::Code::InvalidArgument);
        assert_eq!(code_name(tonic::Code::ResourceExhausted), "ResourceExhausted");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
