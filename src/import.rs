//! Bulk CSV import of survey responses, accounts and their outcomes (churn, contraction,
//! expansion), as exported by survey platforms and CRMs.
//!
//! Columns are found by name (case-insensitive) with a `--column field=Header` mapping for exports
//! whose headers differ. Every row is validated on its own: a bad row is reported with its line
//! number and reason and skipped; the rest import. Rows go through the same [`Ingest`] path as
//! the gRPC API, so an import is idempotent and can be re-run after an interruption. A dry run
//! ([`Destination::DryRun`]) validates and compares every row the same way, on the store alone:
//! it loads no model and writes nothing.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ingest::{self, run_blocking, validate_account, AccountSubmission, Ingest, OrderedWrites, Submission};
use crate::store::{AccountRecord, OutcomeKind, OutcomeRecord, Store, StoreResult, WriteCounts, WriteOutcome};

/// Response fields a CSV column can map to.
pub const RESPONSE_FIELDS: &[&str] =
    &["response_id", "account_id", "survey", "score", "verbatim", "submitted_at", "scale_min", "scale_max"];
/// Account fields a CSV column can map to.
pub const ACCOUNT_FIELDS: &[&str] = &["account_id", "arr", "churned_at"];
/// Outcome fields a CSV column can map to.
pub const OUTCOME_FIELDS: &[&str] = &["account_id", "type", "occurred_at", "arr_change"];

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// field → CSV header, overriding the default of a header named like the field.
    pub columns: HashMap<String, String>,
    /// Survey type for files without a `survey` column.
    pub survey: Option<String>,
    /// Scale for files without `scale_min` / `scale_max` columns.
    pub scale: Option<(i32, i32)>,
    /// Columns to leave out of the attributes.
    pub ignore: Vec<String>,
}

/// Where an import's rows go.
#[derive(Clone, Copy)]
pub enum Destination<'a> {
    /// Analysed and stored through the ingest path, as the gRPC API stores them.
    Store(&'a Ingest),
    /// Validated and compared with what is stored, to count what an import would do (a dry
    /// run): reads no text, so needs no model, and writes nothing.
    DryRun(&'a Arc<dyn Store>),
}

/// Parses `field=Header` mappings.
pub fn parse_column_mappings(specs: &[String], fields: &[&str]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for spec in specs {
        let (field, header) = spec
            .split_once('=')
            .ok_or_else(|| Error::invalid("--column", format!("{spec:?} is not field=Header")))?;
        let field = field.trim();
        if !fields.contains(&field) {
            return Err(Error::invalid("--column", format!("unknown field {field:?}; expected one of {}", fields.join(", "))));
        }
        out.insert(field.to_string(), header.to_string());
    }
    Ok(out)
}

/// One skipped row.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRow {
    /// 1-based line of the row's first line in the file (the header is line 1).
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default, Clone)]
pub struct ImportSummary {
    pub rows: u64,
    pub writes: WriteCounts,
    /// Accepted rows without a verbatim (score only).
    pub score_only: u64,
    pub rejected: Vec<RejectedRow>,
    /// Counted by a dry run: nothing was written.
    pub dry_run: bool,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A dry run says what an import would do.
        let (inserted, updated, accepted) = if self.dry_run { ("to import", "to update", "") } else { ("imported", "updated", "accepted ") };
        let (w, rejected) = (&self.writes, self.rejected.len());
        write!(f, "{} rows: {} {inserted}, {} {updated}, {} unchanged, {rejected} rejected", self.rows, w.inserted, w.updated, w.unchanged)?;
        if self.score_only > 0 {
            write!(f, " ({} {accepted}without a verbatim, score only)", self.score_only)?;
        }
        writeln!(f)?;
        for r in &self.rejected {
            writeln!(f, "  line {}: {}", r.line, r.reason)?;
        }
        if self.dry_run {
            writeln!(f, "dry run: nothing was written")?;
        }
        Ok(())
    }
}

/// Finds each field's column: the mapping first, else a header equal to the field name.
struct Columns {
    index: HashMap<&'static str, usize>,
    /// (header, index) of every column that becomes an attribute.
    attributes: Vec<(String, usize)>,
}

impl Columns {
    fn resolve(headers: &csv::StringRecord, fields: &[&'static str], opts: &ImportOptions) -> Result<Self> {
        let find = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name.trim()));
        let mut index = HashMap::new();
        for &field in fields {
            match opts.columns.get(field) {
                Some(header) => {
                    let i = find(header).ok_or_else(|| {
                        Error::invalid("--column", format!("{field}={header}: no column {header:?} in the header ({})", list(headers)))
                    })?;
                    index.insert(field, i);
                }
                None => {
                    if let Some(i) = find(field) {
                        index.insert(field, i);
                    }
                }
            }
        }
        let used: Vec<usize> = index.values().copied().collect();
        let attributes = headers
            .iter()
            .enumerate()
            .filter(|(i, h)| !used.contains(i) && !h.trim().is_empty() && !opts.ignore.iter().any(|x| x.eq_ignore_ascii_case(h)))
            .map(|(i, h)| (h.trim().to_string(), i))
            .collect();
        Ok(Self { index, attributes })
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, field: &str) -> Option<&'r str> {
        self.index.get(field).and_then(|&i| record.get(i)).map(str::trim)
    }

    fn require(&self, field: &str, headers: &csv::StringRecord) -> Result<()> {
        if self.index.contains_key(field) {
            Ok(())
        } else {
            Err(Error::invalid(
                "--column",
                format!("no column for {field}: add a {field:?} column or map one with --column {field}=Header (header: {})", list(headers)),
            ))
        }
    }

    fn attributes(&self, record: &csv::StringRecord) -> BTreeMap<String, String> {
        self.attributes
            .iter()
            .filter_map(|(h, i)| record.get(*i).map(str::trim).filter(|v| !v.is_empty()).map(|v| (h.clone(), v.to_string())))
            .collect()
    }
}

fn list(headers: &csv::StringRecord) -> String {
    headers.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
}

fn reader(input: impl Read) -> csv::Reader<impl Read> {
    csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::None).from_reader(input)
}

fn read_headers(csv: &mut csv::Reader<impl Read>) -> Result<csv::StringRecord> {
    Ok(csv.headers().map_err(|e| Error::invalid("file", format!("cannot read the CSV header: {e}")))?.clone())
}

/// Reads the next row into `record` and returns its first line number; an unreadable row is
/// counted and reported in `summary` and skipped. `None` at the end of the file.
fn next_record(csv: &mut csv::Reader<impl Read>, record: &mut csv::StringRecord, summary: &mut ImportSummary) -> Option<u64> {
    loop {
        let line = csv.position().line();
        match csv.read_record(record) {
            Ok(false) => return None,
            Ok(true) => {
                summary.rows += 1;
                return Some(line);
            }
            Err(e) => {
                summary.rows += 1;
                summary.rejected.push(RejectedRow { line, reason: format!("unreadable row: {e}") });
            }
        }
    }
}

/// Rows imported at once: they share encoder batches.
const CONCURRENT_ROWS: usize = 64;

/// A written row: its line, whether it had no verbatim, and the outcome.
type RowDone = (u64, bool, Result<WriteOutcome>);

/// Imports survey responses into `destination`. `progress` is called with (rows done, bytes
/// read) as rows finish.
pub async fn import_responses(
    destination: Destination<'_>,
    workspace: &str,
    input: impl Read,
    opts: &ImportOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<ImportSummary> {
    let mut csv = reader(input);
    let headers = read_headers(&mut csv)?;
    let columns = Columns::resolve(&headers, RESPONSE_FIELDS, opts)?;
    for field in ["response_id", "account_id", "score"] {
        columns.require(field, &headers)?;
    }
    if opts.survey.is_none() {
        columns.require("survey", &headers).map_err(|_| {
            Error::invalid("--survey", format!("no survey column: pass --survey NPS|CSAT|CES or map one with --column survey=Header ({})", list(&headers)))
        })?;
    }
    let mut summary = ImportSummary { dry_run: matches!(destination, Destination::DryRun(_)), ..Default::default() };
    let mut writes: OrderedWrites<RowDone> = OrderedWrites::new(CONCURRENT_ROWS);
    let mut dry_run = ingest::DryRun::default();
    let mut record = csv::StringRecord::new();
    while let Some(line) = next_record(&mut csv, &mut record, &mut summary) {
        let submission = match response_row(&columns, &record, opts) {
            Ok(s) => s,
            Err(reason) => {
                summary.rejected.push(RejectedRow { line, reason });
                continue;
            }
        };
        let score_only = submission.verbatim.trim().is_empty();
        let ingest = match destination {
            Destination::DryRun(store) => {
                let outcome = dry_run.check(store, workspace, &submission).await;
                count_row(&mut summary, line, score_only, outcome)?;
                progress(summary.rows, csv.position().byte());
                continue;
            }
            Destination::Store(ingest) => ingest.clone(),
        };
        // Of two rows of one id, the file's later one is stored (and counted as an update), as the
        // dry run counts it.
        while let Some(done) = writes.make_way(&submission.response_id).await {
            let (line, score_only, result) = done?;
            count_row(&mut summary, line, score_only, result)?;
            progress(summary.rows - writes.running() as u64, csv.position().byte());
        }
        let workspace = workspace.to_string();
        writes.spawn(submission.response_id.clone(), async move { (line, score_only, ingest.submit_patiently(&workspace, &submission).await.map(|r| r.write)) });
    }
    while let Some(done) = writes.next().await {
        let (line, score_only, result) = done?;
        count_row(&mut summary, line, score_only, result)?;
    }
    progress(summary.rows, csv.position().byte());
    summary.rejected.sort_by_key(|r| r.line);
    Ok(summary)
}

/// Counts one validated row's outcome in `summary`.
fn count_row(summary: &mut ImportSummary, line: u64, score_only: bool, result: Result<WriteOutcome>) -> Result<()> {
    match result {
        Ok(w) => {
            summary.writes.add(w);
            summary.score_only += score_only as u64;
        }
        Err(Error::InvalidArgument { field, message }) => {
            summary.rejected.push(RejectedRow { line, reason: format!("{field}: {message}") })
        }
        // Storage or model failures stop the import: skipping would silently lose rows.
        Err(e) => return Err(e),
    }
    Ok(())
}

fn response_row(columns: &Columns, record: &csv::StringRecord, opts: &ImportOptions) -> std::result::Result<Submission, String> {
    let get = |f: &str| columns.get(record, f).unwrap_or("");
    let score_text = get("score");
    let score: f64 = score_text
        .parse()
        .map_err(|_| if score_text.is_empty() { "score: missing".to_string() } else { format!("score: {score_text:?} is not a number") })?;
    let scale = match (columns.get(record, "scale_min"), columns.get(record, "scale_max")) {
        (Some(min), Some(max)) if !min.is_empty() || !max.is_empty() => {
            let parse = |field: &str, v: &str| v.parse::<i32>().map_err(|_| format!("{field}: {v:?} is not a whole number"));
            Some((parse("scale_min", min)?, parse("scale_max", max)?))
        }
        _ => opts.scale,
    };
    let survey = match columns.get(record, "survey") {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => opts.survey.clone().unwrap_or_default(),
    };
    Ok(Submission {
        response_id: get("response_id").to_string(),
        account_id: get("account_id").to_string(),
        survey,
        score,
        scale,
        verbatim: columns.get(record, "verbatim").unwrap_or("").to_string(),
        submitted_at: columns.get(record, "submitted_at").map(str::to_string),
        attributes: columns.attributes(record),
    })
}

/// Imports accounts (all valid rows in one transaction).
pub async fn import_accounts(store: &Arc<dyn Store>, workspace: &str, input: impl Read, opts: &ImportOptions) -> Result<ImportSummary> {
    write_all(store, workspace, read_accounts(input, opts)?, false, |s, ws, accounts| s.upsert_accounts(ws, accounts)).await
}

/// Counts what [`import_accounts`] would do with `input`, writing nothing.
pub async fn dry_run_accounts(store: &Arc<dyn Store>, workspace: &str, input: impl Read, opts: &ImportOptions) -> Result<ImportSummary> {
    write_all(store, workspace, read_accounts(input, opts)?, true, |s, ws, accounts| s.check_accounts(ws, accounts)).await
}

/// Imports churn, contraction and expansion events (all valid rows in one transaction).
pub async fn import_outcomes(store: &Arc<dyn Store>, workspace: &str, input: impl Read, opts: &ImportOptions) -> Result<ImportSummary> {
    write_all(store, workspace, read_outcomes(input, opts)?, false, |s, ws, outcomes| s.record_outcomes(ws, outcomes)).await
}

/// Counts what [`import_outcomes`] would do with `input`, writing nothing.
pub async fn dry_run_outcomes(store: &Arc<dyn Store>, workspace: &str, input: impl Read, opts: &ImportOptions) -> Result<ImportSummary> {
    write_all(store, workspace, read_outcomes(input, opts)?, true, |s, ws, outcomes| s.check_outcomes(ws, outcomes)).await
}

/// A store's batch write (all or none), or a dry run's count of what it would do.
type BatchWrite<T> = fn(&dyn Store, &str, &[T]) -> StoreResult<Vec<WriteOutcome>>;

/// Runs `write` on a file's valid rows and counts what it returns.
async fn write_all<T: Send + 'static>(
    store: &Arc<dyn Store>,
    workspace: &str,
    (mut summary, rows): (ImportSummary, Vec<T>),
    dry_run: bool,
    write: BatchWrite<T>,
) -> Result<ImportSummary> {
    let ws = workspace.to_string();
    summary.writes = run_blocking(store, move |s| write(s, &ws, &rows)).await?.into_iter().collect();
    summary.dry_run = dry_run;
    Ok(summary)
}

/// An amount of money as a CRM exports it: thousands separators and a currency sign allowed.
fn money(field: &str, text: &str) -> std::result::Result<f64, String> {
    text.replace([',', '$', '€', '£'], "").parse::<f64>().map_err(|_| format!("{field}: {text:?} is not a number"))
}

/// An accounts file's valid accounts, and a summary of its rows and rejections.
fn read_accounts(input: impl Read, opts: &ImportOptions) -> Result<(ImportSummary, Vec<AccountRecord>)> {
    let mut csv = reader(input);
    let headers = read_headers(&mut csv)?;
    let columns = Columns::resolve(&headers, ACCOUNT_FIELDS, opts)?;
    columns.require("account_id", &headers)?;
    columns.require("arr", &headers)?;
    let mut summary = ImportSummary::default();
    let mut accounts = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Some(line) = next_record(&mut csv, &mut record, &mut summary) {
        let account = money("arr", columns.get(&record, "arr").unwrap_or("")).and_then(|arr| {
            let submission = AccountSubmission {
                account_id: columns.get(&record, "account_id").unwrap_or("").to_string(),
                arr,
                churned_at: columns.get(&record, "churned_at").map(str::to_string),
                attributes: columns.attributes(&record),
            };
            validate_account(&submission).map_err(|e| e.to_string())
        });
        match account {
            Ok(a) => accounts.push(a),
            Err(reason) => summary.rejected.push(RejectedRow { line, reason }),
        }
    }
    Ok((summary, accounts))
}

/// An outcomes file's valid events, and a summary of its rows and rejections. Columns other than
/// the outcome fields are ignored: an event has no attributes.
fn read_outcomes(input: impl Read, opts: &ImportOptions) -> Result<(ImportSummary, Vec<OutcomeRecord>)> {
    let mut csv = reader(input);
    let headers = read_headers(&mut csv)?;
    let columns = Columns::resolve(&headers, OUTCOME_FIELDS, opts)?;
    for field in ["account_id", "type", "occurred_at"] {
        columns.require(field, &headers)?;
    }
    let mut summary = ImportSummary::default();
    let mut outcomes = Vec::new();
    let mut record = csv::StringRecord::new();
    while let Some(line) = next_record(&mut csv, &mut record, &mut summary) {
        match outcome_row(&columns, &record) {
            Ok(o) => outcomes.push(o),
            Err(reason) => summary.rejected.push(RejectedRow { line, reason }),
        }
    }
    Ok((summary, outcomes))
}

fn outcome_row(columns: &Columns, record: &csv::StringRecord) -> std::result::Result<OutcomeRecord, String> {
    let kind_text = columns.get(record, "type").unwrap_or("");
    let kind = OutcomeKind::parse(&kind_text.to_ascii_lowercase());
    if kind.is_none() && !kind_text.is_empty() {
        return Err(format!("type: {kind_text:?} is not one of churn, contraction, expansion"));
    }
    let arr_change = match columns.get(record, "arr_change") {
        Some(text) if !text.is_empty() => Some(money("arr_change", text)?),
        _ => None,
    };
    let account_id = columns.get(record, "account_id").unwrap_or("");
    ingest::validate_outcome(account_id, kind, columns.get(record, "occurred_at").unwrap_or(""), arr_change).map_err(|e| e.to_string())
}
