//! Integration tests, built as one binary: the real model, a real server on 127.0.0.1:0.

mod common;
mod parity;
mod server;
mod ingest;
mod import;
mod cli;
mod themes;
mod sentiment;
mod report;
mod postgres;
mod auth;
mod erase;
mod language;
