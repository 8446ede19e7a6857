//! Verbatim turns customer-survey comments ("verbatims") into ranked, money-weighted issues.
//!
//! # Layout
//! The data path reads top to bottom:
//! - [`survey`]: NPS / CSAT / CES scales, validation, categories and survey maths.
//! - [`text`]: normalising a verbatim and splitting it into sentence/clause segments.
//! - [`language`]: which segments are not English (no sentiment, the reserved "not English" theme).
//! - [`model`]: finding, fetching and running the all-MiniLM-L6-v2 encoder (candle), and the
//!   sentiment branch that shares its lower layers (and its trainer).
//! - [`infer`]: the queue in front of the encoder: dynamic micro-batches and backpressure.
//! - [`analyze`]: segments + embeddings for a batch of texts, shared by every front end.
//! - [`ingest`]: validating, analysing and idempotently storing survey responses.
//! - [`store`]: the `Store` trait, its SQLite (embedded default) and PostgreSQL (shared by
//!   replicas) implementations, workspace-scoped.
//! - [`import`]: bulk CSV import of responses and accounts, with column mapping.
//! - [`themes`]: the recluster itself: spectral k-means (linfa), labels and quotes, stable ids.
//! - [`recluster`]: the recluster as a job: store → themes → atomic activation.
//! - [`sentiment`]: what a segment's and a verbatim's sentiment are (aggregate, mixed), the
//!   training data, and the train / adapt / eval commands.
//! - [`impact`]: revenue-weighted impact statistics (score impact, risk ratios, excess churned ARR),
//!   trends, alerts, at-risk accounts, and the period's document.
//! - [`report`]: renderings of that document: HTML (plotters SVG charts), Markdown, CSV, JSON.
//! - [`simulate`]: a synthetic workspace with planted themes and churn, for demos and tests.
//! - [`jsonl`]: JSON-lines batch files for the command line.
//! - [`grpc`]: the tonic front end (generated code, service, health, reflection, status mapping).
//! - [`metrics`]: every call counted and timed, and the encoder queue, for Prometheus.
//! - [`webhook`]: the week's alerts pushed to a chat or incident tool after each scheduled recluster.
//! - [`auth`]: API tokens (workspace, scopes) and the decision whether a call may run.
//! - [`curation`]: renaming, pinning and merging themes by hand (RPCs and `verbatim themes`).
//! - [`error`]: the crate's error type; [`fault`]: crash-test fault points.

pub mod analyze;
pub mod auth;
pub mod curation;
pub mod error;
pub mod fault;
pub mod grpc;
pub mod impact;
pub mod import;
pub mod infer;
pub mod ingest;
pub mod jsonl;
pub mod language;
pub mod metrics;
pub mod model;
pub mod recluster;
pub mod report;
pub mod sentiment;
pub mod simulate;
pub mod store;
pub mod survey;
pub mod text;
pub mod themes;
pub mod webhook;

pub use error::{Error, Result};
