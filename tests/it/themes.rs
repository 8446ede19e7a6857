//! Themes end to end, with the real model and real SQLite files: the recluster through gRPC and
//! the CLI, curation that survives reclusters, online assignment, crash safety, and the Banking77
//! quality and stability targets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tonic::Code;
use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{self, ListThemesRequest, MergeThemesRequest, PinThemeRequest, ReclusterRequest, RenameThemeRequest};
use verbatim::import::{self, Destination, ImportOptions};
use verbatim::infer::Infer;
use verbatim::ingest::Ingest;
use verbatim::recluster::{self, ReclusterJob};
use verbatim::store::{SqliteStore, Store};
use verbatim::themes::{self, NO_CONTENT};

use crate::common::{encoder, model_dir, shared_dir, TestServer};

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub(crate) fn verbatim_cmd(db: &Path, args: &[&str]) -> Command {
    encoder(); // fetch the model once, before a child process looks for it
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_verbatim"));
    cmd.arg("--db").arg(db).arg("--model-dir").arg(model_dir()).args(args);
    cmd
}

pub(crate) fn run_ok(db: &Path, args: &[&str]) -> String {
    let out: Output = verbatim_cmd(db, args).output().unwrap();
    assert!(out.status.success(), "verbatim {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fixture's four topics, by response id range, and the words a good label uses for them.
fn topic_of(response_id: &str) -> Option<(&'static str, &'static [&'static str])> {
    let n: u32 = response_id.trim_start_matches('t').parse().ok()?;
    Some(match n {
        1..=14 => ("billing", &["invoice", "charged", "charge", "bill", "billing", "refund", "billed", "fees", "overcharge", "overcharged"]),
        15..=28 => ("delivery", &["parcel", "delivery", "package", "shipping", "delivered", "arrived", "courier", "shipment", "late"]),
        29..=42 => ("support", &["support", "service", "agent", "customer", "help", "ticket", "staff", "rep", "desk"]),
        43..=56 => ("app", &["app", "crashes", "crashing", "freezes", "mobile", "crash", "application", "update"]),
        _ => return None,
    })
}

/// Each topic's theme: the one most of its responses are in, which must hold all but at most one.
fn majority_themes(theme_of: &HashMap<String, i64>) -> HashMap<&'static str, i64> {
    let mut counts: HashMap<&'static str, HashMap<i64, usize>> = HashMap::new();
    for (id, &theme) in theme_of {
        if let Some((topic, _)) = topic_of(id) {
            *counts.entry(topic).or_default().entry(theme).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(topic, by_theme)| {
            let total: usize = by_theme.values().sum();
            let (&theme, &n) = by_theme.iter().max_by_key(|(&t, &n)| (n, std::cmp::Reverse(t))).expect("a topic has responses");
            assert!(n + 1 >= total, "{topic}: only {n} of {total} in one theme: {by_theme:?}");
            (topic, theme)
        })
        .collect()
}

/// Through gRPC on a real server: Recluster, ListThemes, labels and quotes, online assignment,
/// RenameTheme / PinTheme / MergeThemes surviving the next recluster, export, and bad input.
#[tokio::test(flavor = "multi_thread")]
async fn recluster_curate_and_assign_through_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    run_ok(&db, &["import", fixture("themes.csv").to_str().unwrap()]);
    let server = TestServer::start_with_db(&db, 256).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();

    let before = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    assert_eq!(before.version, 0, "no model before the first recluster");

    let first = client.recluster(ReclusterRequest { k: 4, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((first.version, first.k, first.new, first.matched), (1, 4, 4, 0), "{first:?}");
    let rows = server.store.theme_assignments("default").unwrap();
    assert_eq!(rows.len() as u64, first.segments);
    assert!(rows.iter().all(|r| r.theme_id.is_some()), "every segment has a theme; none is thrown out");

    // Content-free answers form the reserved theme; each real theme is one topic, named by it.
    let theme_of: HashMap<String, i64> = rows.iter().map(|r| (r.response_id.clone(), r.theme_id.unwrap())).collect();
    for id in ["t57", "t58", "t59", "t60", "t61", "t62"] {
        assert_eq!(theme_of[id], NO_CONTENT, "{id} is content-free");
    }
    // k-means is exact here on this machine for every seed tried, but float differences between
    // CPUs can move a borderline sentence: allow one stray per topic of 14, no more.
    let topic_theme = majority_themes(&theme_of);
    assert_eq!(topic_theme.values().collect::<std::collections::HashSet<_>>().len(), 4, "four topics, four themes: {topic_theme:?}");
    let listed = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    assert_eq!(listed.version, 1);
    assert!(listed.assign_threshold > 0.0);
    for t in listed.themes.iter().filter(|t| t.theme_id != NO_CONTENT) {
        let topic = *topic_theme.iter().find(|(_, &th)| th == t.theme_id).expect("every theme is a topic's").0;
        let words = theme_of.keys().filter_map(|id| topic_of(id)).find(|(tp, _)| *tp == topic).expect("topic words").1;
        let top3: Vec<&str> = t.keywords.iter().take(3).flat_map(|k| k.split(' ')).collect();
        assert!(top3.iter().any(|w| words.contains(w)), "{topic}: keywords {:?} do not name it", t.keywords);
        assert!((3..=5).contains(&t.quotes.len()), "{topic}: {:?}", t.quotes);
        for q in &t.quotes {
            assert!(rows.iter().any(|r| r.theme_id == Some(t.theme_id) && &r.segment_text == q), "quote {q:?} is not a segment of theme {}", t.theme_id);
        }
        assert_eq!(t.display_label, t.label);
    }

    // A new response is assigned online to the active model.
    let billing = topic_theme["billing"];
    let reply = client
        .submit_response(pb::SurveyResponse {
            response_id: "new-1".into(),
            account_id: "a1".into(),
            survey: pb::SurveyType::Nps as i32,
            score: 3.0,
            verbatim: "They charged my card twice for the same invoice.".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let theme = reply.segments[0].theme.as_ref().expect("assigned to a theme");
    assert_eq!(theme.theme_id, billing, "{reply:?}");
    assert!(!theme.label.is_empty() && !reply.segments[0].emerging);
    assert!(reply.themes_status.contains("theme model v1"), "{}", reply.themes_status);

    // Curation: a name and a pin survive the next recluster; a merge is honoured by it.
    let support = topic_theme["support"];
    let delivery = topic_theme["delivery"];
    let renamed = client.rename_theme(RenameThemeRequest { theme_id: billing, name: "Billing errors".into() }).await.unwrap().into_inner();
    assert_eq!(renamed.display_label, "Billing errors");
    assert!(client.pin_theme(PinThemeRequest { theme_id: support, pinned: true }).await.unwrap().into_inner().pinned);
    let merged = client
        .merge_themes(MergeThemesRequest { source_theme_id: delivery, target_theme_id: support })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(merged.theme_id, support);
    assert!(server.store.theme_assignments("default").unwrap().iter().all(|r| r.theme_id != Some(delivery)));
    // Online assignment follows the curation at once (the model is cached by version and revision):
    // a delivery complaint goes to the theme it was merged into, billing carries its new name.
    let submit = |id: &str, text: &str| pb::SurveyResponse {
        response_id: id.into(),
        account_id: "a1".into(),
        survey: pb::SurveyType::Nps as i32,
        score: 3.0,
        verbatim: text.into(),
        ..Default::default()
    };
    let reply = client.submit_response(submit("new-2", "The parcel arrived a week late and the courier left it outside.")).await.unwrap().into_inner();
    assert_eq!(reply.segments[0].theme.as_ref().map(|t| t.theme_id), Some(support), "{reply:?}");
    let reply = client.submit_response(submit("new-3", "They charged my card twice for the same invoice again.")).await.unwrap().into_inner();
    assert_eq!(reply.segments[0].theme.as_ref().map(|t| t.label.as_str()), Some("Billing errors"), "{reply:?}");

    let second = client.recluster(ReclusterRequest { k: 4, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(second.version, 2);
    let by_id: HashMap<i64, &pb::ThemeInfo> = second.themes.iter().map(|t| (t.theme_id, t)).collect();
    assert_eq!(by_id[&billing].name, "Billing errors", "the name survives: {second:?}");
    assert!(by_id[&support].pinned, "the pin survives");
    assert!(!by_id.contains_key(&delivery), "the merged-away theme does not come back: {second:?}");
    let rows = server.store.theme_assignments("default").unwrap();
    let delivery_rows: Vec<_> = rows.iter().filter(|r| topic_of(&r.response_id).is_some_and(|t| t.0 == "delivery")).collect();
    let followed = delivery_rows.iter().filter(|r| r.theme_id == Some(support)).count();
    assert!(followed + 1 >= delivery_rows.len(), "{followed} of {} delivery segments follow the merge", delivery_rows.len());

    // Export: one CSV row per segment with the active model's theme.
    let csv_path = dir.path().join("assignments.csv");
    let out = run_ok(&db, &["export-assignments", "--output", csv_path.to_str().unwrap()]);
    assert!(out.contains(&format!("wrote {} segments", rows.len())), "{out}");
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(reader.headers().unwrap(), vec!["response_id", "segment_index", "segment_text", "theme_id", "theme_label"]);
    let exported: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(exported.len(), rows.len());
    assert!(exported.iter().any(|r| r[4] == *"Billing errors"));

    // Bad input names the field; unknown themes are NOT_FOUND; the server keeps serving.
    let bad = client.recluster(ReclusterRequest { since: "last spring".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("since:"), "{}", bad.message());
    let missing = client.rename_theme(RenameThemeRequest { theme_id: 999, name: "x".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let same = client.merge_themes(MergeThemesRequest { source_theme_id: billing, target_theme_id: billing }).await.unwrap_err();
    assert_eq!(same.code(), Code::InvalidArgument);
    assert!(same.message().contains("source_theme_id"), "{}", same.message());
    let empty_window = client.recluster(ReclusterRequest { since: "2999-01-01".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(empty_window.code(), Code::NotFound, "{}", empty_window.message());
    assert_eq!(client.list_themes(ListThemesRequest {}).await.unwrap().into_inner().version, 2, "failed runs change nothing");
    server.shutdown().await;
}

/// Verbatims in other languages (tests/fixtures/languages.csv: 30 feedback sentences in 13
/// languages, written for this) are set aside, through the import, the recluster, online
/// assignment and AnalyzeText: the reserved theme -1 "not English", no sentiment, the language
/// code in the reply; the English topics still form their own themes, with no foreign quote.
#[tokio::test(flavor = "multi_thread")]
async fn verbatims_in_other_languages_get_their_own_reserved_theme_and_no_sentiment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    run_ok(&db, &["import", fixture("themes.csv").to_str().unwrap()]);
    run_ok(&db, &["import", fixture("languages.csv").to_str().unwrap()]);
    let server = TestServer::start_with_db(&db, 256).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();
    let first = client.recluster(ReclusterRequest { k: 4, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(first.k, 4, "{first:?}");

    let rows = server.store.theme_assignments("default").unwrap();
    let foreign: Vec<_> = rows.iter().filter(|r| r.response_id.starts_with('x')).collect();
    let english: Vec<_> = rows.iter().filter(|r| r.response_id.starts_with('t')).collect();
    let set_aside = foreign.iter().filter(|r| r.theme_id == Some(themes::OTHER_LANGUAGE)).count();
    assert!(set_aside * 10 >= foreign.len() * 8, "only {set_aside} of {} foreign segments set aside", foreign.len());
    assert!(english.iter().all(|r| r.theme_id != Some(themes::OTHER_LANGUAGE)), "an English segment was set aside");
    let theme_of: HashMap<String, i64> = english.iter().map(|r| (r.response_id.clone(), r.theme_id.unwrap())).collect();
    assert_eq!(majority_themes(&theme_of).values().collect::<std::collections::HashSet<_>>().len(), 4, "the four English topics keep four themes");

    let listed = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    let other = listed.themes.iter().find(|t| t.theme_id == themes::OTHER_LANGUAGE).expect("the reserved theme is listed");
    assert_eq!((other.label.as_str(), other.size), (themes::OTHER_LANGUAGE_LABEL, set_aside as u64));
    assert!(other.alike.is_empty() && other.quotes.iter().all(|q| foreign.iter().any(|r| &r.segment_text == q)));
    let foreign_texts: Vec<&str> = foreign.iter().map(|r| r.segment_text.as_str()).collect();
    for t in listed.themes.iter().filter(|t| !themes::is_reserved(t.theme_id)) {
        assert!(t.quotes.iter().all(|q| !foreign_texts.contains(&q.as_str())), "theme {} quotes a foreign segment: {:?}", t.theme_id, t.quotes);
    }
    // The report counts the responses it could not read, and ranks none of the reserved themes.
    let report = client.get_theme_report(pb::ThemeReportRequest::default()).await.unwrap().into_inner();
    let responses_aside: std::collections::HashSet<&str> = foreign.iter().filter(|r| r.theme_id == Some(themes::OTHER_LANGUAGE)).map(|r| r.response_id.as_str()).collect();
    assert_eq!(report.responses_not_english as usize, responses_aside.len(), "{report:?}");
    assert!(!report.themes.is_empty() && report.themes.iter().all(|t| !themes::is_reserved(t.theme_id)), "{report:?}");
    let refused = client.merge_themes(MergeThemesRequest { source_theme_id: themes::OTHER_LANGUAGE, target_theme_id: other_real(&listed) }).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("source_theme_id") && refused.message().contains("reserved"), "{}", refused.message());
    let refused = client.rename_theme(RenameThemeRequest { theme_id: themes::OTHER_LANGUAGE, name: "Foreign".into() }).await.unwrap_err();
    assert!(refused.code() == Code::InvalidArgument && refused.message().starts_with("theme_id: theme -1"), "{}", refused.message());
    assert_eq!(client.list_themes(ListThemesRequest {}).await.unwrap().into_inner(), listed, "refused curation changes nothing");

    // Online: a German response goes to the reserved theme with no sentiment, its short first
    // clause too (alone too short to tell); an English one is read.
    let submit = |id: &str, text: &str| pb::SurveyResponse { response_id: id.into(), account_id: "a1".into(), survey: pb::SurveyType::Nps as i32, score: 2.0, verbatim: text.into(), ..Default::default() };
    let german = client.submit_response(submit("new-de", "Die Installation war einfach, aber die Rechnung ist falsch und niemand antwortet.")).await.unwrap().into_inner();
    assert_eq!(german.segments.len(), 2, "{german:?}");
    for seg in &german.segments {
        assert_eq!((seg.language.as_str(), seg.theme.as_ref().map(|t| (t.theme_id, t.label.as_str()))), ("deu", Some((themes::OTHER_LANGUAGE, themes::OTHER_LANGUAGE_LABEL))), "{german:?}");
        assert!(seg.sentiment.is_none(), "{german:?}");
    }
    assert!(german.sentiment.is_none(), "no English segment, no verbatim sentiment: {german:?}");
    let english = client.submit_response(submit("new-en", "The invoice is wrong and nobody answers our emails.")).await.unwrap().into_inner();
    assert!(english.segments[0].language.is_empty() && english.segments[0].sentiment.is_some(), "{english:?}");
    assert!(english.segments[0].theme.as_ref().is_some_and(|t| !themes::is_reserved(t.theme_id)), "{english:?}");

    // AnalyzeText: per segment, so a mixed-language verbatim keeps its English sentence's sentiment.
    let analysed = client
        .analyze_text(pb::AnalyzeTextRequest { texts: vec!["Support was quick and friendly. El envío llegó dos semanas tarde y la caja estaba rota.".into()], include_embeddings: false })
        .await
        .unwrap()
        .into_inner();
    let segs = &analysed.results[0].segments;
    assert_eq!(segs.iter().map(|s| s.language.as_str()).collect::<Vec<_>>(), ["", "spa"], "{analysed:?}");
    assert!(segs[0].sentiment.is_some() && segs[1].sentiment.is_none(), "{analysed:?}");
    server.shutdown().await;
}

fn other_real(listed: &pb::ListThemesReply) -> i64 {
    listed.themes.iter().find(|t| !themes::is_reserved(t.theme_id)).expect("a real theme").theme_id
}

/// `serve --alerts-webhook --report-dir`: after the scheduled recluster, the week's alerts reach a
/// webhook (a local HTTP listener here) as a Slack-style message with the alerts beside it, and
/// the workspace's report is archived as HTML. The data: nine
/// weeks of billing and delivery complaints, one billing complaint a week per phrasing until the
/// last week, which holds five of each.
#[cfg(unix)]
#[test]
fn serve_posts_the_weeks_alerts_to_the_webhook_after_a_scheduled_recluster() {
    use std::io::{BufRead, BufReader, Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let now = chrono::Utc::now().timestamp();
    let billing = ["I was charged twice this month.", "The invoice shows the wrong amount.", "Billing charged us for seats we removed."];
    let delivery = ["The parcel arrived a week late.", "Delivery took far too long again."];
    let mut csv = String::from("response_id,account_id,survey,score,verbatim,submitted_at\n");
    let mut n = 0;
    let mut row = |text: &str, at: i64| {
        n += 1;
        let when = chrono::DateTime::from_timestamp(at, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
        csv.push_str(&format!("r{n},a{},NPS,{},{text},{when}\n", n % 13, n % 7));
    };
    for week in 0..9i64 {
        let start = now - (9 - week) * 7 * 86_400 + 3600;
        let repeats = if week == 8 { 5 } else { 1 };
        for (i, text) in billing.iter().enumerate() {
            (0..repeats).for_each(|r| row(text, start + (i * 10 + r) as i64 * 600));
        }
        for (i, text) in delivery.iter().enumerate() {
            row(text, start + 86_400 + i as i64 * 600);
        }
    }
    let path = dir.path().join("responses.csv");
    std::fs::write(&path, csv).unwrap();
    run_ok(&db, &["import", path.to_str().unwrap()]);

    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/verbatim", hook.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = hook.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        tx.send((head, String::from_utf8(body).unwrap())).unwrap();
    });

    // The archive already holds an older report of this workspace (beyond --report-keep 1), one of
    // another workspace from before the retention cutoff (its quotes are erased), one of it from
    // after, and a file that is no report; only the first two go.
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    for old in ["default-2020-01-06.html", "other-2010-01-04.html", "other-2020-01-06.html", "notes.txt"] {
        std::fs::write(reports.join(old), "old").unwrap();
    }
    let refused = verbatim_cmd(&db, &["serve", "--recluster-every", "1d", "--report-dir", reports.to_str().unwrap(), "--retention", "14d"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("--report-period") && stderr.contains("--retention"), "{stderr}");
    let serve = ["serve", "--listen", "127.0.0.1:0", "--recluster-every", "1d", "--report-dir", reports.to_str().unwrap(), "--report-keep", "1", "--retention", "3650d"];
    let mut child = verbatim_cmd(&db, &serve)
        .env("VERBATIM_ALERTS_WEBHOOK", &url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let (mut delivered, mut retained) = (false, false);
    for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        delivered |= line.contains("alerts delivered") || line.contains("alerts not delivered") || line.contains("nothing sent");
        retained |= line.contains("retention run done") || line.contains("retention run failed");
        lines.push(line);
        if delivered && retained {
            break;
        }
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let log = lines.join("\n");
    assert!(log.contains("alerts delivered to the webhook"), "{log}");
    assert!(!log.contains("/hooks/verbatim"), "the webhook URL is a secret and is not logged:\n{log}");
    let (head, body) = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the webhook was called");
    assert!(head.starts_with("POST /hooks/verbatim ") && head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alerts = body["alerts"].as_array().unwrap();
    assert!(body["text"].as_str().unwrap().starts_with("Verbatim · default · ") && body["workspace"] == "default", "{body:#}");
    let model = SqliteStore::open(&db).unwrap().active_theme_model("default").unwrap().expect("reclustered");
    let billing_themes: Vec<i64> = model.themes.iter().filter(|t| t.quotes.iter().any(|q| billing.contains(&q.as_str()))).map(|t| t.id).collect();
    let spikes: Vec<i64> = alerts.iter().filter(|a| a["kind"] == "volume_spike").map(|a| a["theme_id"].as_i64().unwrap()).collect();
    assert!(!spikes.is_empty() && spikes.iter().all(|id| billing_themes.contains(id)), "spikes {spikes:?}, billing themes {billing_themes:?}: {body:#}");
    assert_eq!(body["text"].as_str().unwrap().lines().count(), alerts.len() + 1, "one line per alert");
    // --report-dir: the same pass archived the workspace's HTML report and pruned the archive.
    let mut archived: Vec<String> = std::fs::read_dir(&reports).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    archived.sort();
    let today = archived[0].clone(); // the day the pass ran
    assert!(today.starts_with("default-") && today != "default-2020-01-06.html", "{archived:?}");
    assert_eq!(archived[1..], ["notes.txt", "other-2020-01-06.html"], "{log}");
    assert!(log.contains("report written") && log.contains("archived report deleted"), "{log}");
    assert!(std::fs::read_to_string(reports.join(&today)).unwrap().contains("<title>Verbatim report — default — "));
}

/// `verbatim themes` lists the active model and curates it from the command line; a server
/// already running on the same database sees each change at once; bad input changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn themes_command_lists_and_curates_what_a_running_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let empty = run_ok(&db, &["themes"]);
    assert!(empty.contains("no theme model yet"), "{empty}");
    run_ok(&db, &["import", fixture("themes.csv").to_str().unwrap()]);
    run_ok(&db, &["recluster", "--k", "4"]);
    let server = TestServer::start_with_db(&db, 64).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();
    let listed = |json: &str| -> serde_json::Value { serde_json::from_str(json).unwrap() };
    let before = listed(&run_ok(&db, &["themes", "--json"]));
    let themes = before["themes"].as_array().unwrap();
    assert_eq!(before["model"]["version"], 1);
    let served = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    assert_eq!(themes.len(), served.themes.len());
    let sizes: Vec<u64> = themes.iter().map(|t| t["size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first: {sizes:?}");
    let real: Vec<&serde_json::Value> = themes.iter().filter(|t| t["theme_id"] != NO_CONTENT).collect();
    // Merge candidates: per theme the most alike others, most alike first, as ListThemes gives them.
    for t in themes {
        let id = t["theme_id"].as_i64().unwrap();
        let alike: Vec<(i64, f64)> = t["alike"].as_array().unwrap().iter().map(|a| (a["theme_id"].as_i64().unwrap(), a["similarity"].as_f64().unwrap())).collect();
        let rpc = &served.themes.iter().find(|s| s.theme_id == id).unwrap().alike;
        assert_eq!(alike.iter().map(|a| a.0).collect::<Vec<_>>(), rpc.iter().map(|a| a.theme_id).collect::<Vec<_>>(), "theme {id}");
        if id == NO_CONTENT {
            assert!(alike.is_empty());
        } else {
            assert_eq!(alike.len(), (real.len() - 1).min(3), "theme {id}");
            assert!(alike.iter().all(|a| a.0 != id && a.0 != NO_CONTENT) && alike.windows(2).all(|w| w[0].1 >= w[1].1), "theme {id}: {alike:?}");
        }
    }
    let (a, b) = (real[0]["theme_id"].as_i64().unwrap(), real[1]["theme_id"].as_i64().unwrap());
    let (size_a, size_b) = (real[0]["size"].as_u64().unwrap(), real[1]["size"].as_u64().unwrap());

    // Bad input: refused, naming the argument, and nothing changes.
    let refused = |args: &[&str], says: &str| {
        let out = verbatim_cmd(&db, args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["themes", "merge", &a.to_string(), "--into", &a.to_string()], "THEME: must differ from --into");
    refused(&["themes", "merge", "0", "--into", &a.to_string()], "THEME: theme 0 (\"no content\") is reserved and cannot be merged");
    refused(&["themes", "rename", "-1", "Foreign"], "THEME: theme -1 (\"not English\") is reserved and cannot be renamed");
    refused(&["themes", "pin", "0"], "cannot be pinned");
    refused(&["themes", "rename", "999", "x"], "theme_id 999 is not in the active theme model");
    refused(&["themes", "rename", &a.to_string(), &"n".repeat(201)], "NAME: 201 characters; at most 200");
    assert_eq!(listed(&run_ok(&db, &["themes", "--json"])), before);

    let out = run_ok(&db, &["themes", "rename", &a.to_string(), "Billing errors"]);
    assert!(out.contains(&format!("theme {a}: Billing errors")), "{out}");
    run_ok(&db, &["themes", "pin", &b.to_string()]);
    let served = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    let by_id = |id: i64| served.themes.iter().find(|t| t.theme_id == id).unwrap().clone();
    assert_eq!(by_id(a).display_label, "Billing errors", "the running server sees the new name");
    assert!(by_id(b).pinned);
    run_ok(&db, &["themes", "unpin", &b.to_string()]);
    let out = run_ok(&db, &["themes", "merge", &b.to_string(), "--into", &a.to_string()]);
    assert!(out.contains(&format!("({} segments)", size_a + size_b)), "{out}");
    let served = client.list_themes(ListThemesRequest {}).await.unwrap().into_inner();
    assert!(served.themes.iter().all(|t| t.theme_id != b), "merged away");
    assert_eq!(served.themes.iter().find(|t| t.theme_id == a).unwrap().size, size_a + size_b);
    let table = run_ok(&db, &["themes"]);
    assert!(table.contains("theme model v1") && table.lines().any(|l| l.contains("Billing errors") && l.contains(&(size_a + size_b).to_string())), "{table}");
    server.shutdown().await;
}

/// A process killed in the middle of activating a model (abort after half the segment updates)
/// leaves the previous model active and every segment on it; the next run succeeds.
#[test]
fn a_crash_mid_recluster_leaves_the_previous_model_active() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    run_ok(&db, &["import", fixture("themes.csv").to_str().unwrap()]);
    let summary = run_ok(&db, &["recluster", "--k", "4"]);
    assert!(summary.contains("theme model v1: 4 themes"), "{summary}");
    let before = SqliteStore::open(&db).unwrap().theme_assignments("default").unwrap();

    let crashed = verbatim_cmd(&db, &["recluster", "--k", "3"]).env("VERBATIM_FAULT", "recluster.activate").output().unwrap();
    assert!(!crashed.status.success(), "the injected fault aborts the process");
    assert!(String::from_utf8_lossy(&crashed.stderr).contains("fault injected at recluster.activate"));

    let store = SqliteStore::open(&db).unwrap();
    let model = store.active_theme_model("default").unwrap().unwrap();
    assert_eq!((model.version, model.k), (1, 4), "the previous model is still active");
    assert_eq!(store.theme_assignments("default").unwrap(), before, "no segment moved to the half-written model");
    drop(store);
    let again = run_ok(&db, &["recluster", "--k", "3"]);
    assert!(again.contains("theme model v2: 3 themes"), "{again}");
}

/// Banking77 (10,003 labelled queries) imported as NPS verbatims: quality against the intent
/// labels for k = 77 and for k chosen automatically, label quality, id stability when 10%
/// new responses arrive and when the same data is reclustered again, and the same input to the
/// clustering when the same data is imported another way.
#[tokio::test(flavor = "multi_thread")]
async fn banking77_quality_and_stability() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED banking77_quality_and_stability: ../shared is absent");
        return;
    };
    let mut reader = csv::Reader::from_path(shared.join("data/banking77/train.csv")).unwrap();
    let rows: Vec<(String, String)> = reader.records().map(|r| r.unwrap()).map(|r| (r[0].to_string(), r[1].to_string())).collect();
    let names: Vec<String> = {
        let mut n: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        n.sort();
        n.dedup();
        n
    };
    let category: HashMap<String, usize> = rows.iter().enumerate().map(|(i, r)| (format!("b{i}"), names.binary_search(&r.1).unwrap())).collect();
    // 90% first (every tenth row held back, so every intent is present), the other 10% later.
    let csv_in = |order: &mut dyn Iterator<Item = usize>| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["response_id", "account_id", "survey", "score", "verbatim"]).unwrap();
        for i in order {
            w.write_record([&format!("b{i}"), &format!("acct{}", i % 97), "NPS", &(i % 11).to_string(), &rows[i].0]).unwrap();
        }
        w.into_inner().unwrap()
    };
    let csv_of = |keep: &dyn Fn(usize) -> bool| csv_in(&mut (0..rows.len()).filter(|&i| keep(i)));
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b77.db")).unwrap());
    let ingest = Ingest::new(Infer::start(encoder(), 4096), store.clone());
    let job = ReclusterJob { k: Some(77), ..Default::default() };
    let import = |data: Vec<u8>| {
        let ingest = ingest.clone();
        async move { import::import_responses(Destination::Store(&ingest), "default", data.as_slice(), &ImportOptions::default(), |_, _| {}).await.unwrap() }
    };

    let first = import(csv_of(&|i| i % 10 != 9)).await;
    assert!(first.rejected.is_empty(), "{first}");
    let s1 = recluster::run(store.as_ref(), "default", &job, &mut |_| {}).unwrap();
    let v1 = theme_by_segment(store.as_ref());
    import(csv_of(&|i| i % 10 == 9)).await;
    let s2 = recluster::run(store.as_ref(), "default", &job, &mut |_| {}).unwrap();
    let v2 = theme_by_segment(store.as_ref());
    let kept_new_data = share_same(&v1, &v2);
    let s3 = recluster::run(store.as_ref(), "default", &job, &mut |_| {}).unwrap();
    let v3 = theme_by_segment(store.as_ref());
    let kept_same_data = share_same(&v2, &v3);
    eprintln!(
        "banking77 stability: +10% data keeps {:.1}% of old segments on their id ({} matched, {} new, {} retired); \
         same data keeps {:.1}%",
        100.0 * kept_new_data, s2.matched, s2.new, s2.retired.len(), 100.0 * kept_same_data
    );
    assert_eq!((s1.version, s2.version, s3.version), (1, 2, 3));
    assert!(kept_new_data >= 0.90, "adding 10% moved too many old segments: kept {kept_new_data:.3}");
    assert!(kept_same_data >= 0.98, "re-running on the same data moved segments: kept {kept_same_data:.3}");

    // Quality: the pipeline from scratch on all stored segments, k = 77 and automatic.
    let segments = store.theme_segments("default", None).unwrap();
    let group = themes::recluster::response_groups(segments.iter().map(|s| s.response_id.as_str()));
    let mut response_of = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        if group[i] == i {
            ids.push(&s.response_id);
        }
        response_of.push(ids.len() - 1);
    }
    let categories: Vec<usize> = ids.iter().map(|id| category[*id]).collect();

    // Reproducible: the same rows imported into a fresh store in one go and in reverse order read
    // back in the same order with the same vectors, bit for bit, so they cluster the same.
    let store2: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b77-again.db")).unwrap());
    let ingest2 = Ingest::new(Infer::start(encoder(), 4096), store2.clone());
    let again = import::import_responses(Destination::Store(&ingest2), "default", csv_in(&mut (0..rows.len()).rev()).as_slice(), &ImportOptions::default(), |_, _| {}).await.unwrap();
    assert!(again.rejected.is_empty(), "{again}");
    let segments2 = store2.theme_segments("default", None).unwrap();
    assert_eq!(segments2.len(), segments.len());
    for (a, b) in segments.iter().zip(&segments2) {
        assert_eq!((&a.response_id, a.index, &a.text), (&b.response_id, b.index, &b.text), "read back in another order");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&a.embedding) == bits(&b.embedding), "{:?} segment {}: another vector when imported another way", a.response_id, a.index);
    }

    let x = themes::recluster::stack(&segments.iter().map(|s| s.embedding.as_slice()).collect::<Vec<_>>()).unwrap();
    let x = themes::recluster::in_context(x.view(), &group);
    let texts: Vec<&str> = segments.iter().map(|s| s.text.as_str()).collect();
    // The reading is reproducible (vectors do not depend on batching, segments come back in
    // response-id order), but a single seed's NMI at k = 77 spans about ±0.005 (0.797–0.806 here),
    // so the target is on the mean over three seeds; the automatic k runs once.
    let d = recluster::DEFAULT_SEED;
    let runs = [(Some(77), None, d), (Some(77), None, d + 1), (Some(77), None, d + 2), (None, Some((50, 130)), d)];
    let mut given = Vec::new();
    for (k, k_range, seed) in runs {
        let opts = themes::recluster::ReclusterOptions { k, k_range, seed };
        let outcome = themes::recluster::recluster(&texts, x.view(), &group, &Default::default(), &opts, &mut |_| {}).unwrap();
        let e = themes::eval::score_outcome(&outcome, &texts, &response_of, &categories, &names);
        eprintln!(
            "banking77 k={} ({}, seed {seed}): NMI {:.4}, ARI {:.4}, segment NMI {:.4}, keywords name the intent in {:.0}% of themes",
            e.k, if k.is_some() { "given" } else { "automatic" }, e.nmi, e.ari, e.segment_nmi, 100.0 * e.keyword_hits
        );
        if k.is_some() {
            assert!(e.nmi >= 0.79, "NMI {:.4} < 0.79 with k={} (seed {seed})", e.nmi, e.k);
            given.push(e.nmi);
        } else {
            assert!(e.nmi >= 0.80, "NMI {:.4} < 0.80 with k={} chosen automatically", e.nmi, e.k);
        }
        assert!((50..=130).contains(&e.k));
        assert!(e.keyword_hits >= 0.6, "top-3 keywords share a word with the intent in only {:.0}% of themes", 100.0 * e.keyword_hits);
        for t in &outcome.model.themes {
            for q in &t.quotes {
                let ok = texts.iter().zip(&outcome.assignments).any(|(text, a)| a.0 == t.id && text == q);
                assert!(ok, "quote {q:?} is not a segment of theme {}", t.id);
            }
        }
    }
    let mean = given.iter().sum::<f64>() / given.len() as f64;
    assert!(mean >= 0.80, "mean NMI {mean:.4} < 0.80 with k=77 over three seeds: {given:?}");
}

fn theme_by_segment(store: &dyn Store) -> HashMap<(String, u32), Option<i64>> {
    store.theme_assignments("default").unwrap().into_iter().map(|r| ((r.response_id, r.segment_index), r.theme_id)).collect()
}

/// Share of the segments of `before` that have the same theme id in `after`.
fn share_same(before: &HashMap<(String, u32), Option<i64>>, after: &HashMap<(String, u32), Option<i64>>) -> f64 {
    let same = before.iter().filter(|(k, v)| after.get(*k) == Some(v)).count();
    same as f64 / before.len().max(1) as f64
}

/// `verbatim serve --recluster-every 1d` as processes: a server reclusters at start every
/// workspace that has no model yet (two here, one named only in the import), without any call;
/// a second server started on the same store afterwards finds the models fresh and runs nothing.
#[cfg(unix)]
#[test]
fn serve_reclusters_every_workspace_when_its_model_is_due() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let csv = fixture("themes.csv");
    run_ok(&db, &["import", csv.to_str().unwrap()]);
    run_ok(&db, &["--workspace", "second", "import", csv.to_str().unwrap()]);
    // Runs a server until `stop` says so about a log line; the lines it read.
    let serve_until = |log_filter: &str, stop: &dyn Fn(&[String]) -> bool| -> Vec<String> {
        let mut child = verbatim_cmd(&db, &["serve", "--listen", "127.0.0.1:0", "--recluster-every", "1d"])
            .env("RUST_LOG", log_filter)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
            lines.push(line);
            if stop(&lines) {
                break;
            }
        }
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap();
        lines
    };

    let first = serve_until("info", &|lines| lines.last().is_some_and(|l| l.contains("scheduled recluster pass done")));
    let done: Vec<&String> = first.iter().filter(|l| l.contains("scheduled recluster done")).collect();
    assert_eq!(done.len(), 2, "one run per workspace:\n{}", first.join("\n"));
    for workspace in ["default", "second"] {
        assert!(done.iter().any(|l| l.contains(&format!("workspace={workspace}")) && l.contains("version=1")), "{workspace} reclustered: {done:?}");
    }
    let store = SqliteStore::open(&db).unwrap();
    for workspace in ["default", "second"] {
        let model = store.active_theme_model(workspace).unwrap().expect("a model is active");
        assert!(model.k >= 1 && model.themes.iter().any(|t| t.id == NO_CONTENT));
    }

    let second = serve_until("info,verbatim=debug", &|lines| lines.last().is_some_and(|l| l.contains("scheduled recluster pass done")));
    assert!(second.last().unwrap().contains("ran=0"), "models a day old are not due:\n{}", second.join("\n"));
    for workspace in ["default", "second"] {
        assert_eq!(store.active_theme_stamp(workspace).unwrap().unwrap().version, 1, "{workspace} was not reclustered again");
    }
}
