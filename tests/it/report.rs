//! The whole product path on a simulated workspace, as a user runs it: `verbatim simulate` →
//! `import-accounts` / `import` → `recluster` → `report` (JSON, CSV, Markdown, HTML), then the
//! `GetThemeReport` / `ListAlerts` RPCs on the same database, and the HTML in headless Chromium.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use verbatim::grpc::pb::verbatim_client::VerbatimClient;
use verbatim::grpc::pb::{AttributeFilter, ListAlertsRequest, ListThemeSegmentsRequest, SurveyType, ThemeReportRequest};
use verbatim::simulate::{planted_theme_of, THEMES};

use crate::common::{encoder, model_dir, TestServer};

const CHURN_THEMES: [&str; 2] = ["billing errors", "integration sync failures"];

fn verbatim(db: &Path, args: &[&str]) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .args(args)
        .arg("--db")
        .arg(db)
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "verbatim {args:?}: {stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    stdout
}

/// The report's period: the last four weeks. Over the whole eight weeks, with the flat context
/// weight, the top clear cost is a theme of dashboard sentences glued to billing ones (README,
/// Revenue report, Known limits).
const PERIOD: &str = "28d";
const PERIOD_DAYS: u32 = 28;

/// The planted theme most of a reported theme's quotes come from.
fn planted(theme: &serde_json::Value) -> Option<&'static str> {
    let mut votes: HashMap<&'static str, usize> = HashMap::new();
    for q in theme["quotes"].as_array().unwrap() {
        if let Some(t) = planted_theme_of(q.as_str().unwrap()) {
            *votes.entry(t).or_default() += 1;
        }
    }
    votes.into_iter().max_by_key(|(_, n)| *n).map(|(t, _)| t)
}

/// Simulates, imports, reclusters; returns the temp dir (kept alive), the database and the dir.
fn simulated_workspace() -> (tempfile::TempDir, PathBuf, PathBuf) {
    encoder(); // fetch the model before the child processes look for it
    let tmp = tempfile::tempdir().unwrap();
    let (db, dir) = (tmp.path().join("verbatim.db"), tmp.path().join("sim"));
    let out = verbatim(&db, &["simulate", "--out", dir.to_str().unwrap()]);
    assert!(out.contains("2000 accounts"), "{out}");
    verbatim(&db, &["import-accounts", dir.join("accounts.csv").to_str().unwrap()]);
    let out = verbatim(&db, &["import", dir.join("responses.csv").to_str().unwrap()]);
    assert!(out.contains("4000 imported") && out.contains("0 rejected"), "{out}");
    verbatim(&db, &["recluster"]);
    (tmp, db, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_churn_themes_top_the_revenue_ranking_in_every_surface() {
    let (_tmp, db, dir) = simulated_workspace();
    let json_path = dir.join("report.json");
    verbatim(&db, &["report", "--period", PERIOD, "--output", json_path.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["ranked_by"], "excess_churned_arr");
    let themes = report["themes"].as_array().unwrap();
    let described: Vec<(String, Option<&str>, String)> =
        themes.iter().map(|t| (t["evidence"].as_str().unwrap().to_string(), planted(t), t["label"].as_str().unwrap().to_string())).collect();
    // A reader tells themes (and the alerts about them) apart by label: on this data most themes'
    // top keywords coincide, and before labels were made distinct 95 of 120 shared one.
    let distinct: std::collections::HashSet<&str> = described.iter().map(|d| d.2.as_str()).collect();
    assert_eq!(distinct.len(), described.len(), "two themes share a label: {described:?}");

    // The top of the ranking: clear costs, all from the two planted churn drivers.
    let clear_costs: Vec<&serde_json::Value> =
        themes.iter().take_while(|t| t["evidence"] == "clear" && t["excess_churned_arr"]["value"].as_f64().unwrap() > 0.0).collect();
    let demoted: Vec<(Option<&str>, i64)> = themes.iter().filter(|t| !t["explained_by_theme_id"].is_null()).map(|t| (planted(t), t["explained_by_theme_id"].as_i64().unwrap())).collect();
    eprintln!(
        "report: {} themes, clear costs {:?}, demoted as riding along {demoted:?}",
        themes.len(),
        clear_costs.iter().map(|t| (planted(t), t["theme_id"].as_i64().unwrap(), t["churn_risk_ratio"]["q_value"].as_f64())).collect::<Vec<_>>()
    );
    assert!(clear_costs.len() >= 2, "at least two clear costs on top: {described:#?}");
    for t in &clear_costs {
        assert!(CHURN_THEMES.contains(&planted(t).unwrap_or("?")), "a clear cost that is not a churn theme: {t:#}");
        assert!(t["excess_churned_arr"]["low"].as_f64().unwrap() > 0.0);
        assert!(t["churn_risk_ratio"]["low"].as_f64().unwrap() > 1.0);
    }
    // Every theme with enough accounts is tested for churn: its p-value agrees with its interval,
    // and its q-value (adjusted for the number of themes tested) is never smaller than it.
    let tested: Vec<&serde_json::Value> = themes.iter().filter(|t| t["evidence"] != "too_little_data").collect();
    assert!(tested.len() > 10, "{described:#?}");
    for t in themes {
        let rr = &t["churn_risk_ratio"];
        let (p, q) = (rr["p_value"].as_f64().unwrap(), rr["q_value"].as_f64());
        assert_eq!(p < 0.05, rr["low"].as_f64().unwrap() > 1.0 || rr["high"].as_f64().unwrap() < 1.0, "{t:#}");
        assert_eq!(q.is_some(), t["evidence"] != "too_little_data", "{t:#}");
        assert!(q.is_none_or(|q| q >= p && q <= 1.0), "{t:#}");
    }
    // The most mentioned theme of the most frequent planted theme (dashboard design, no churn
    // effect) is not a clear cost and ranks below all of them.
    let volume = THEMES.iter().max_by(|a, b| a.frequency.total_cmp(&b.frequency)).unwrap().name;
    let (rank, loudest) = themes
        .iter()
        .enumerate()
        .filter(|(_, t)| planted(t) == Some(volume))
        .max_by_key(|(_, t)| t["responses"].as_u64().unwrap())
        .expect("a dashboard theme");
    assert!(rank >= clear_costs.len(), "{loudest:#}");
    assert!(loudest["responses"].as_u64().unwrap() > clear_costs.iter().map(|t| t["responses"].as_u64().unwrap()).max().unwrap());

    // Alerts: the integration theme was planted to spike in the last week.
    let alerts = report["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["kind"] == "volume_spike" && planted_theme_of_label(themes, a["theme_id"].as_i64().unwrap()) == Some("integration sync failures")),
        "{alerts:#?}"
    );
    // Accounts to call: active (no churn in accounts.csv), on a churn theme, most costly first.
    let churned: HashMap<String, bool> = csv::Reader::from_path(dir.join("accounts.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), !r[2].is_empty()))
        .collect();
    let at_risk = report["at_risk_accounts"].as_array().unwrap();
    assert!(!at_risk.is_empty());
    let clear_ids: Vec<i64> = clear_costs.iter().map(|t| t["theme_id"].as_i64().unwrap()).collect();
    for a in at_risk {
        assert!(!churned[a["account_id"].as_str().unwrap()], "{a}");
        assert!(clear_ids.contains(&a["theme_id"].as_i64().unwrap()), "{a}");
    }
    // Each clear cost keeps its churn within the accounts that raise another clear cost and within
    // those that raise none; a theme demoted for riding along is uncertain and names a clear cost.
    if clear_costs.len() > 1 {
        for t in &clear_costs {
            assert!(t["churn_risk_ratio"]["adjusted"]["low"].as_f64().unwrap() > 1.0, "{t:#}");
        }
    }
    for t in themes.iter().filter(|t| !t["explained_by_theme_id"].is_null()) {
        assert_eq!(t["evidence"], "uncertain", "{t:#}");
        assert!(t["churn_risk_ratio"]["adjusted"]["low"].as_f64().unwrap() <= 1.0, "{t:#}");
        assert!(clear_ids.contains(&t["explained_by_theme_id"].as_i64().unwrap()), "{t:#}");
    }
    let losses: Vec<f64> = at_risk.iter().map(|a| a["expected_loss"].as_f64().unwrap()).collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "{losses:?}");
    // Trends cover the last week and the eight before it; breakdowns are automatic: every
    // attribute with a few values (the simulation's plan, region and channel).
    assert_eq!(themes[0]["trend"].as_array().unwrap().len(), 9);
    let attributes: Vec<&str> = themes[0]["breakdowns"].as_array().unwrap().iter().map(|b| b["attribute"].as_str().unwrap()).collect();
    assert_eq!(attributes, ["channel", "plan", "region"]);

    // CSV and Markdown carry the same ranking.
    let csv_path = dir.join("report.csv");
    verbatim(&db, &["report", "--period", PERIOD, "--output", csv_path.to_str().unwrap()]);
    let mut rows = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(rows.headers().unwrap().iter().collect::<Vec<_>>(), verbatim::report::csv::COLUMNS);
    let ids: Vec<i64> = rows.records().map(|r| r.unwrap()[1].parse().unwrap()).collect();
    let json_ids: Vec<i64> = themes.iter().map(|t| t["theme_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, json_ids);
    let md_path = dir.join("report.md");
    verbatim(&db, &["report", "--period", PERIOD, "--format", "md", "--output", md_path.to_str().unwrap()]);
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.contains(&format!("| 1 | {} |", themes[0]["label"].as_str().unwrap())) && md.contains("## How to read this"));

    // The RPCs on the same database give the same ranking and alerts.
    let server = TestServer::start_with_db(&db, 64).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap().max_decoding_message_size(64 << 20);
    let reply = client.get_theme_report(ThemeReportRequest { period_days: PERIOD_DAYS, breakdown_by: vec!["plan".into()], ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(reply.ranked_by, "excess_churned_arr");
    assert_eq!(reply.themes.iter().map(|t| t.theme_id).collect::<Vec<_>>(), json_ids);
    // The same q-values (JSON text keeps all but the last bit).
    for (rpc, json) in reply.themes.iter().zip(themes) {
        let (a, b) = (rpc.churn_q_value, json["churn_risk_ratio"]["q_value"].as_f64());
        assert!(a.is_some() == b.is_some() && a.zip(b).is_none_or(|(a, b)| (a - b).abs() < 1e-12), "{a:?} {b:?}");
        let (a, b) = (rpc.churn_risk_ratio_adjusted.map(|r| r.low), json["churn_risk_ratio"]["adjusted"]["low"].as_f64());
        assert!(a.is_some() == b.is_some() && a.zip(b).is_none_or(|(a, b)| (a - b).abs() < 1e-12), "{a:?} {b:?}");
        assert_eq!(rpc.explained_by_theme_id, json["explained_by_theme_id"].as_i64());
    }
    assert_eq!(reply.themes[0].breakdowns.len(), 1);
    assert_eq!(reply.themes[0].breakdowns[0].attribute, "plan");
    assert_eq!(reply.at_risk_accounts.len(), at_risk.len());
    let one = client.get_theme_report(ThemeReportRequest { period_days: PERIOD_DAYS, theme_id: json_ids[1], ..Default::default() }).await.unwrap().into_inner();
    assert_eq!((one.themes.len(), one.themes[0].rank), (1, 2));
    assert_eq!(one.themes[0].churn_q_value, reply.themes[1].churn_q_value, "one theme's q-value is still adjusted for all of them");
    let listed = client.list_alerts(ListAlertsRequest { period_days: PERIOD_DAYS, ..Default::default() }).await.unwrap().into_inner();
    let kinds = |v: Vec<(i64, String)>| {
        let mut v = v;
        v.sort();
        v
    };
    assert_eq!(
        kinds(listed.alerts.iter().map(|a| (a.theme_id, a.kind.clone())).collect()),
        kinds(alerts.iter().map(|a| (a["theme_id"].as_i64().unwrap(), a["kind"].as_str().unwrap().to_string())).collect())
    );
    // A scoped report: enterprise accounts' NPS responses only, counted against the CSV files;
    // the command line and the RPC agree on it, and a misspelt scope is refused, naming what exists.
    let plan_of: HashMap<String, String> =
        csv::Reader::from_path(dir.join("accounts.csv")).unwrap().records().map(|r| r.unwrap()).map(|r| (r[0].to_string(), r[3].to_string())).collect();
    let in_scope = csv::Reader::from_path(dir.join("responses.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[2] == "NPS" && plan_of[&r[1]] == "enterprise" && (reply.period_from.as_str()..reply.period_to.as_str()).contains(&&r[7]))
        .count();
    let enterprise = vec![AttributeFilter { attribute: "plan".into(), values: vec!["enterprise".into()] }];
    let nps = vec![SurveyType::Nps as i32];
    let scoped = client
        .get_theme_report(ThemeReportRequest { period_days: PERIOD_DAYS, until: reply.period_to.clone(), filters: enterprise.clone(), surveys: nps.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    eprintln!("report: scoped to enterprise NPS, {} of {} responses, {} themes", scoped.responses, reply.responses, scoped.themes.len());
    assert!(in_scope > 50 && scoped.responses as usize == in_scope, "{} responses in scope, {in_scope} in the CSV", scoped.responses);
    assert!(scoped.accounts < reply.accounts && (scoped.filters.clone(), scoped.surveys.clone()) == (enterprise.clone(), nps.clone()));
    for t in &scoped.themes {
        let whole = reply.themes.iter().find(|w| w.theme_id == t.theme_id).expect("a scoped theme is in the whole report");
        assert!(t.responses <= whole.responses && t.accounts <= whole.accounts, "{t:?}");
    }
    assert!(scoped.at_risk_accounts.iter().all(|a| plan_of[&a.account_id] == "enterprise"));
    let scoped_json = dir.join("enterprise.json");
    let printed = verbatim(&db, &["report", "--period", PERIOD, "--until", &reply.period_to, "--where", "plan=enterprise", "--survey", "nps", "--output", scoped_json.to_str().unwrap()]);
    assert!(printed.contains("NPS · plan = enterprise"), "{printed}");
    let scoped_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&scoped_json).unwrap()).unwrap();
    assert_eq!(scoped_json["scope"], serde_json::json!({ "surveys": ["NPS"], "filters": [{ "attribute": "plan", "values": ["enterprise"] }] }));
    assert_eq!(scoped_json["responses"].as_u64(), Some(in_scope as u64));
    let cli_ids: Vec<i64> = scoped_json["themes"].as_array().unwrap().iter().map(|t| t["theme_id"].as_i64().unwrap()).collect();
    assert_eq!(cli_ids, scoped.themes.iter().map(|t| t.theme_id).collect::<Vec<_>>());
    let alerts_in_scope = ListAlertsRequest { period_days: PERIOD_DAYS, filters: enterprise.clone(), surveys: nps, ..Default::default() };
    assert!(client.list_alerts(alerts_in_scope).await.is_ok());
    let misspelt = vec![AttributeFilter { attribute: "plan".into(), values: vec!["enterprize".into()] }];
    let e = client.get_theme_report(ThemeReportRequest { filters: misspelt.clone(), ..Default::default() }).await.unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().starts_with("filters") && e.message().contains("enterprise, growth, starter"), "{}", e.message());
    let e = client.list_alerts(ListAlertsRequest { filters: misspelt, ..Default::default() }).await.unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().starts_with("filters"), "{}", e.message());
    let e = client.get_theme_report(ThemeReportRequest { surveys: vec![7], ..Default::default() }).await.unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().starts_with("surveys") && e.message().contains("NPS (1)"), "{}", e.message());
    let bad = Command::new(env!("CARGO_BIN_EXE_verbatim")).args(["report", "--where", "plna=enterprise", "--output"]).arg(dir.join("x.json")).arg("--db").arg(&db).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("--where") && stderr.contains("attributes: channel, plan, region"), "{stderr}");
    assert!(!dir.join("x.json").exists(), "a refused report writes nothing");

    // Drill-down: the top clear cost's segments, newest first and page by page, are exactly the
    // segments `export-assignments` puts in that theme, each with its whole verbatim.
    let top = clear_ids[0];
    let export = dir.join("assignments.csv");
    verbatim(&db, &["export-assignments", "--output", export.to_str().unwrap()]);
    let mut expected: Vec<(String, u32)> = csv::Reader::from_path(&export)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[3].parse::<i64>().ok() == Some(top))
        .map(|r| (r[0].to_string(), r[1].parse().unwrap()))
        .collect();
    let (mut read, mut texts, mut token, mut pages) = (Vec::new(), Vec::new(), String::new(), 0);
    let mut previous: Option<(String, String)> = None;
    loop {
        let request = ListThemeSegmentsRequest { theme_id: top, page_size: 40, page_token: token.clone(), ..Default::default() };
        let page = client.list_theme_segments(request).await.unwrap().into_inner();
        pages += 1;
        assert!(pages <= 100 && page.segments.len() <= 40 && page.version >= 1, "page {pages} never ends");
        for s in &page.segments {
            let key = (s.submitted_at.clone(), s.response_id.clone());
            assert!(previous.as_ref().is_none_or(|p| *p >= key), "newest first: {previous:?} then {key:?}");
            assert!(s.verbatim.contains(&s.text) && s.sentiment.is_some() && s.similarity > 0.0, "{s:?}");
            previous = Some(key);
            read.push((s.response_id.clone(), s.index));
            texts.push(s.text.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    read.sort();
    expected.sort();
    assert!(pages > 1 && read.len() == expected.len(), "{pages} pages, {} segments of {}", read.len(), expected.len());
    assert_eq!(read, expected);
    let about_churn = texts.iter().filter(|t| planted_theme_of(t).is_some_and(|p| CHURN_THEMES.contains(&p))).count();
    assert!(about_churn * 2 > texts.len(), "{about_churn} of {} segments are about a churn theme", texts.len());
    let negative = ListThemeSegmentsRequest { theme_id: top, sentiment: "negative".into(), page_size: 500, ..Default::default() };
    let negative = client.list_theme_segments(negative).await.unwrap().into_inner();
    assert!(!negative.segments.is_empty() && negative.segments.len() <= read.len());
    assert!(negative.segments.iter().all(|s| s.sentiment.as_ref().unwrap().label == "negative"));
    let e = client.list_theme_segments(ListThemeSegmentsRequest { theme_id: top, page_size: 501, ..Default::default() }).await.unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains("page_size") && e.message().contains("1–500"), "{}", e.message());
    let e = client.list_theme_segments(ListThemeSegmentsRequest { theme_id: 99_999, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{}", e.message());
    // The same drill-down within a scope (enterprise accounts): small pages, each full, together
    // exactly the expected segments of enterprise accounts; a scope nothing meets reads empty.
    let account_of: HashMap<String, String> =
        csv::Reader::from_path(dir.join("responses.csv")).unwrap().records().map(|r| r.unwrap()).map(|r| (r[0].to_string(), r[1].to_string())).collect();
    let mut expected_enterprise: Vec<(String, u32)> = expected.iter().filter(|(id, _)| plan_of[&account_of[id]] == "enterprise").cloned().collect();
    let (mut scoped_read, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let request = ListThemeSegmentsRequest { theme_id: top, page_size: 7, page_token: token.clone(), filters: enterprise.clone(), ..Default::default() };
        let page = client.list_theme_segments(request).await.unwrap().into_inner();
        pages += 1;
        assert!(pages <= 200, "page {pages} never ends");
        assert!(page.segments.len() == 7 || page.next_page_token.is_empty(), "a page that is not the last is full");
        scoped_read.extend(page.segments.iter().map(|s| (s.response_id.clone(), s.index)));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    scoped_read.sort();
    expected_enterprise.sort();
    assert!(!expected_enterprise.is_empty() && expected_enterprise.len() < expected.len());
    assert_eq!(scoped_read, expected_enterprise);
    let misspelt_drill = ListThemeSegmentsRequest { theme_id: top, filters: vec![AttributeFilter { attribute: "plan".into(), values: vec!["enterprize".into()] }], ..Default::default() };
    let none = client.list_theme_segments(misspelt_drill).await.unwrap().into_inner();
    assert!(none.segments.is_empty() && none.next_page_token.is_empty(), "a scope nothing in the theme meets is an empty page");
    let enterprise_csv = dir.join("theme-enterprise.csv");
    verbatim(&db, &["theme-segments", "--theme", &top.to_string(), "--where", "plan=enterprise", "--limit", "0", "--output", enterprise_csv.to_str().unwrap()]);
    let mut from_cli: Vec<(String, u32)> =
        csv::Reader::from_path(&enterprise_csv).unwrap().records().map(|r| r.unwrap()).map(|r| (r[1].to_string(), r[7].parse().unwrap())).collect();
    from_cli.sort();
    assert_eq!(from_cli, expected_enterprise);

    // The same from the command line: every segment as CSV, or the newest few printed.
    let theme_csv = dir.join("theme.csv");
    verbatim(&db, &["theme-segments", "--theme", &top.to_string(), "--limit", "0", "--output", theme_csv.to_str().unwrap()]);
    let mut from_cli: Vec<(String, u32)> =
        csv::Reader::from_path(&theme_csv).unwrap().records().map(|r| r.unwrap()).map(|r| (r[1].to_string(), r[7].parse().unwrap())).collect();
    from_cli.sort();
    assert_eq!(from_cli, expected);
    let printed = verbatim(&db, &["theme-segments", "--theme", &top.to_string(), "--sentiment", "negative", "--limit", "3"]);
    assert_eq!(printed.lines().count(), negative.segments.len().min(3), "{printed}");
    assert!(printed.lines().zip(&negative.segments).all(|(line, s)| line.contains(" negative ") && line.contains(&s.response_id)), "{printed}");
    let unknown = Command::new(env!("CARGO_BIN_EXE_verbatim")).args(["theme-segments", "--theme", "99999", "--db"]).arg(&db).output().unwrap();
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success() && stderr.contains("--theme 99999"), "{stderr}");

    // Bad input: a clear status naming the field, and the server keeps serving.
    let e = client.get_theme_report(ThemeReportRequest { period_days: 5000, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("period_days") && e.message().contains("1–3660"), "{}", e.message());
    let e = client.list_alerts(ListAlertsRequest { until: "last tuesday".into(), ..Default::default() }).await.unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().starts_with("until"), "{}", e.message());
    let e = client.get_theme_report(ThemeReportRequest { theme_id: 99_999, ..Default::default() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert!(client.list_alerts(ListAlertsRequest::default()).await.is_ok());
    server.shutdown().await;

    // The HTML report: self-contained, and it renders in headless Chromium with its charts.
    let html_path = dir.join("report.html");
    verbatim(&db, &["report", "--period", PERIOD, "--output", html_path.to_str().unwrap()]);
    let html = std::fs::read_to_string(&html_path).unwrap();
    for external in ["<script", "<link", "src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "the report must not fetch anything: found {external}");
    }
    render_in_chromium(&html_path);
}

fn planted_theme_of_label(themes: &[serde_json::Value], theme_id: i64) -> Option<&'static str> {
    themes.iter().find(|t| t["theme_id"] == theme_id).and_then(planted)
}

/// Renders the report in Debian's Chromium (installed by `.ci/run`; without it, and without
/// `VERBATIM_REQUIRE_CHROMIUM=1`, this part says SKIPPED): no console messages, the impact chart
/// and trend charts in the DOM, and a screenshot.
fn render_in_chromium(html: &Path) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|p| p.exists()) else {
        assert!(std::env::var_os("VERBATIM_REQUIRE_CHROMIUM").is_none(), "VERBATIM_REQUIRE_CHROMIUM is set but chromium is not installed");
        eprintln!("SKIPPED: chromium not installed (apt-get install chromium)");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"])
            .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0", "--window-size=1280,2400"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", html.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let dom = run(&["--dump-dom"]);
    let stderr = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let chart = &dom[dom.find("id=\"impact-chart\"").expect("the impact chart")..];
    let chart = &chart[..chart.find("</svg>").expect("an SVG")];
    assert!(chart.contains("<svg") && chart.matches("<rect").count() >= 3, "bars are drawn");
    assert!(dom.matches("class=\"chart trend\"><svg").count() >= 3, "trend charts are drawn");
    let shot = html.with_extension("png");
    run(&[&format!("--screenshot={}", shot.display())]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "a screenshot with content");
}

/// A survey export alone (no accounts, so no ARR), as many teams start: the report ranks its
/// themes by the points they take off the score, the costliest first, and says so — not by a
/// revenue weight that is zero for every theme.
#[test]
fn a_survey_export_without_revenue_ranks_themes_by_the_points_they_cost() {
    encoder();
    let tmp = tempfile::tempdir().unwrap();
    let (db, csv) = (tmp.path().join("v.db"), tmp.path().join("csat.csv"));
    let complaints = ["My refund still has not arrived after three weeks.", "I am still waiting for the refund for my returned order.", "The refund for the jacket I sent back never came."];
    let praise = ["The fabric is soft and the colour is lovely.", "Lovely soft fabric and a beautiful colour.", "Soft material, gorgeous colour, fits well."];
    let mut rows = String::from("response_id,account_id,survey,score,verbatim,submitted_at\n");
    let today = chrono::Utc::now().date_naive();
    for i in 0..60 {
        let (text, score) = if i % 3 == 0 { (complaints[i / 3 % 3], 1 + i % 2) } else { (praise[i % 3], 4 + i % 2) };
        rows += &format!("r{i},c{i},CSAT,{score},\"{text}\",{}\n", today - chrono::Days::new(1 + i as u64 % 20));
    }
    std::fs::write(&csv, rows).unwrap();
    let out = verbatim(&db, &["import", csv.to_str().unwrap(), "--scale", "1-5"]);
    assert!(out.contains("60 imported"), "{out}");
    verbatim(&db, &["recluster", "--k", "2"]);
    let (json, md) = (tmp.path().join("report.json"), tmp.path().join("report.md"));
    verbatim(&db, &["report", "--period", "28d", "--output", json.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["ranked_by"], "score_impact", "{report:#}");
    let themes = report["themes"].as_array().unwrap();
    let impact = |t: &serde_json::Value| t["scores"][0]["impact"].as_f64().unwrap();
    assert_eq!(themes.len(), 2, "{report:#}");
    assert!(impact(&themes[0]) < 0.0 && impact(&themes[1]) > 0.0, "the refund theme costs CSAT points and ranks first: {report:#}");
    assert!(themes[0]["quotes"].as_array().unwrap().iter().all(|q| q.as_str().unwrap().contains("refund")), "{report:#}");
    verbatim(&db, &["report", "--period", "28d", "--output", md.to_str().unwrap()]);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("ranked by score impact"), "the report says what it ranks by: {md}");
    assert!(md.contains("| no revenue data |") && !md.contains("too little data |"), "twenty mentions are not too little data; the money is missing: {md}");
}

/// A theme's quotes say what it is about: its most typical sentences in its tone. Its most negative
/// sentences were quoted before, and those are often outbursts that joined it through their
/// response (the clothing reviews' returns theme quoted "a huge disappointment.").
#[test]
fn a_themes_quotes_are_its_typical_sentences_not_its_outbursts() {
    encoder();
    let tmp = tempfile::tempdir().unwrap();
    let (db, csv, json) = (tmp.path().join("v.db"), tmp.path().join("csat.csv"), tmp.path().join("report.json"));
    let complaints = ["My refund still has not arrived after three weeks.", "I am still waiting for the refund for my returned order.", "The refund for the jacket I sent back never came."];
    let outbursts = ["This is the worst experience I have ever had.", "Absolutely dreadful.", "What a horrible, miserable mess.", "Never again, truly awful.", "I am furious and disgusted."];
    let mut rows = String::from("response_id,account_id,survey,score,verbatim,submitted_at\n");
    let today = chrono::Utc::now().date_naive();
    for i in 0..30 {
        let text = if i % 6 == 0 { format!("{} {}", complaints[i % 3], outbursts[i / 6]) } else { complaints[i % 3].to_string() };
        rows += &format!("r{i},c{i},CSAT,{},\"{text}\",{}\n", 1 + i % 2, today - chrono::Days::new(1 + i as u64 % 20));
    }
    std::fs::write(&csv, rows).unwrap();
    let out = verbatim(&db, &["import", csv.to_str().unwrap(), "--scale", "1-5"]);
    assert!(out.contains("30 imported"), "{out}");
    verbatim(&db, &["recluster", "--k", "1"]);
    verbatim(&db, &["report", "--period", "28d", "--output", json.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let themes = report["themes"].as_array().unwrap();
    assert_eq!((themes.len(), themes[0]["segments"].as_u64()), (1, Some(35)), "one theme holds every sentence, outbursts too: {report:#}");
    let quotes = themes[0]["quotes"].as_array().unwrap();
    assert!(quotes.len() == 3 && quotes.iter().all(|q| q.as_str().unwrap().contains("refund")), "{quotes:#?}");
}
