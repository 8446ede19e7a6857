//! The scale-out store: one PostgreSQL database that several Verbatim replicas share. Same tables
//! and columns as the SQLite store; one transaction per write, so a failure leaves nothing
//! half-written. Where two replicas could race (the same response submitted to both, two
//! reclusters of one workspace, two account imports), the writer takes a transaction-scoped
//! advisory lock on what it writes, so the second waits for the first instead of failing.
//!
//! Connections are plain TCP unless the URL asks for TLS (`sslmode=require`): then the server's
//! certificate is verified ([`tls`]).

use std::collections::HashMap;
use std::sync::Mutex;

use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, IsolationLevel, Row, ToStatement, Transaction};

use super::*;
use tls::Target;

mod tls;

/// Schema versions, applied in order; `verbatim_schema.version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE responses (
    id            BIGSERIAL PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    response_id   TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    survey        TEXT    NOT NULL CHECK (survey IN ('NPS', 'CSAT', 'CES')),
    scale_min     INTEGER NOT NULL,
    scale_max     INTEGER NOT NULL CHECK (scale_max > scale_min),
    score         DOUBLE PRECISION NOT NULL CHECK (score BETWEEN scale_min AND scale_max),
    verbatim      TEXT    NOT NULL,
    submitted_at  BIGINT  NOT NULL,
    attributes    TEXT    NOT NULL DEFAULT '{}',
    content_hash  TEXT    NOT NULL,
    truncated     BOOLEAN NOT NULL DEFAULT FALSE,
    received_at   BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    UNIQUE (workspace, response_id)
);
CREATE INDEX responses_by_time ON responses (workspace, submitted_at);
CREATE INDEX responses_by_account ON responses (workspace, account_id);

CREATE TABLE segments (
    response            BIGINT  NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    idx                 INTEGER NOT NULL,
    text                TEXT    NOT NULL,
    start_byte          INTEGER NOT NULL,
    end_byte            INTEGER NOT NULL,
    tokens              INTEGER NOT NULL,
    embedding           BYTEA   NOT NULL,
    sentiment_label     TEXT,
    sentiment_score     REAL,
    sentiment_negative  REAL,
    sentiment_neutral   REAL,
    sentiment_positive  REAL,
    theme_id            BIGINT,
    theme_similarity    REAL,
    theme_version       BIGINT,
    PRIMARY KEY (response, idx)
);

CREATE TABLE accounts (
    workspace   TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    arr         DOUBLE PRECISION NOT NULL CHECK (arr >= 0),
    churned_at  BIGINT,
    attributes  TEXT    NOT NULL DEFAULT '{}',
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (workspace, account_id)
);

CREATE TABLE outcomes (
    workspace    TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('churn', 'contraction', 'expansion')),
    occurred_at  BIGINT  NOT NULL,
    arr_change   DOUBLE PRECISION,
    recorded_at  BIGINT  NOT NULL,
    PRIMARY KEY (workspace, account_id, kind, occurred_at)
);

-- One row per recluster that succeeded; `theme_state.active_version` points at the live one.
CREATE TABLE theme_models (
    workspace         TEXT    NOT NULL,
    version           BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    k                 BIGINT  NOT NULL,
    assign_threshold  REAL    NOT NULL,
    segments          BIGINT  NOT NULL,
    params            TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (workspace, version)
);

CREATE TABLE themes (
    workspace  TEXT    NOT NULL,
    version    BIGINT  NOT NULL,
    theme_id   BIGINT  NOT NULL,
    label      TEXT    NOT NULL,
    name       TEXT,
    keywords   TEXT    NOT NULL,
    quotes     TEXT    NOT NULL,
    centroid   BYTEA   NOT NULL,
    size       BIGINT  NOT NULL,
    pinned     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (workspace, version, theme_id),
    FOREIGN KEY (workspace, version) REFERENCES theme_models (workspace, version)
);

CREATE TABLE theme_state (
    workspace       TEXT    PRIMARY KEY,
    active_version  BIGINT  NOT NULL,
    next_theme_id   BIGINT  NOT NULL
);

-- Themes a person merged away: later reclusters fold a cluster that matches `centroid` into
-- `target_id` again.
CREATE TABLE theme_merges (
    workspace  TEXT    NOT NULL,
    source_id  BIGINT  NOT NULL,
    target_id  BIGINT  NOT NULL,
    centroid   BYTEA   NOT NULL,
    merged_at  BIGINT  NOT NULL,
    PRIMARY KEY (workspace, source_id)
);
"#, r#"
-- API tokens: only the SHA-256 of each secret. A name is unique among a workspace's active
-- tokens, and free again once revoked (revoked rows stay, as a record).
CREATE TABLE api_tokens (
    id          BIGSERIAL PRIMARY KEY,
    workspace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (workspace, name) WHERE revoked_at IS NULL;
"#, r#"
-- Bumped by every change to the active model that keeps its version (see `ThemeStamp`).
ALTER TABLE theme_state ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
"#, r#"
-- When a server last took a workspace's scheduled recluster (see `Store::claim_recluster`).
CREATE TABLE recluster_claims (
    workspace   TEXT    PRIMARY KEY,
    claimed_at  BIGINT  NOT NULL
);
"#, r#"
-- A token may expire; when it was last used (written at most once a minute per token).
ALTER TABLE api_tokens ADD COLUMN expires_at   BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
"#, r#"
-- A theme's segments, read a page at a time (`Store::theme_segment_page`).
CREATE INDEX segments_by_theme ON segments (theme_id, theme_version);
"#];

/// Idle connections kept for reuse; more are opened while calls overlap and closed after.
const MAX_IDLE: usize = 8;

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// A PostgreSQL database shared by every workspace and every replica.
pub struct PostgresStore {
    /// The parsed URL; errors name it without its password.
    target: Target,
    idle: Mutex<Vec<Client>>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, with
    /// `?sslmode=require` for TLS: see [`tls`]) and brings its schema up to date.
    pub fn open(url: &str) -> StoreResult<Self> {
        let mut target = Target::parse(url, &redacted(url))?;
        if target.config.get_connect_timeout().is_none() {
            target.config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let store = Self { target, idle: Mutex::new(Vec::new()) };
        store.migrate()?;
        Ok(store)
    }

    fn connection(&self) -> StoreResult<Pooled<'_>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let client = match idle.filter(|c| !c.is_closed()) {
            Some(client) => client,
            None => self.target.connect()?,
        };
        Ok(Pooled { store: self, client: Some(client) })
    }

    /// Brings the schema up to date under an advisory lock, so replicas starting together
    /// migrate once.
    fn migrate(&self) -> StoreResult<()> {
        self.with_tx(|tx| {
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('verbatim/schema', 0))", &[])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS verbatim_schema (version INTEGER NOT NULL)")?;
            let version = match tx.query_opt("SELECT version FROM verbatim_schema", &[])? {
                Some(row) => row.get::<_, i32>(0) as usize,
                None => {
                    tx.execute("INSERT INTO verbatim_schema (version) VALUES (0)", &[])?;
                    0
                }
            };
            if version > MIGRATIONS.len() {
                return Err(StoreError::Corrupt(format!(
                    "schema version {version} is newer than this Verbatim ({}); upgrade Verbatim",
                    MIGRATIONS.len()
                )));
            }
            for sql in &MIGRATIONS[version..] {
                tx.batch_execute(sql)?;
            }
            if version < MIGRATIONS.len() {
                tx.execute("UPDATE verbatim_schema SET version = $1", &[&(MIGRATIONS.len() as i32)])?;
            }
            Ok(())
        })
    }

    fn with_tx<T>(&self, f: impl FnOnce(&mut Transaction) -> StoreResult<T>) -> StoreResult<T> {
        self.with_conn(|c| {
            let mut tx = c.transaction()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Several reads that must agree with each other: one read-only snapshot.
    fn with_snapshot<T>(&self, f: impl FnOnce(&mut Transaction) -> StoreResult<T>) -> StoreResult<T> {
        self.with_conn(|c| {
            let mut tx = c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Runs `f` on a pooled connection. When it fails as unavailable (the server restarted, a
    /// failover, an idle timeout), that connection and the idle ones, which are most likely gone
    /// too, are closed, so the next call reconnects instead of failing again on a stale one.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Client) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.connection()?;
        let out = f(&mut conn);
        if out.as_ref().is_err_and(StoreError::is_unavailable) {
            conn.client = None;
            let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
            drop(stale);
        }
        out
    }

    /// Sets one curation column of a theme in the active model; the theme as it is now, if any.
    fn set_active_theme_column(&self, workspace: &str, theme_id: i64, column: &str, value: &(dyn ToSql + Sync)) -> StoreResult<Option<Theme>> {
        self.with_tx(|tx| {
            lock(tx, "themes", workspace)?;
            let Some(version) = active_version(tx, workspace)? else { return Ok(None) };
            tx.execute(
                &format!("UPDATE themes SET {column} = $4 WHERE workspace = $1 AND version = $2 AND theme_id = $3"),
                &[&workspace, &version, &theme_id, value],
            )?;
            new_revision(tx, workspace)?;
            load_theme(tx, workspace, version, theme_id)
        })
    }
}

impl Drop for PostgresStore {
    /// A blocking client closes its connection by blocking on its own runtime, which panics on a
    /// thread that drives async tasks (a server's store is dropped there at shutdown): close the
    /// idle connections on a thread of their own then.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// A connection lent by the store; back to the idle list when dropped, unless it broke.
struct Pooled<'a> {
    store: &'a PostgresStore,
    client: Option<Client>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take().filter(|c| !c.is_closed()) else { return };
        let mut idle = self.store.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }
}

/// A response from columns 1–8 of `r`: account_id, survey, scale_min, scale_max, score, verbatim,
/// submitted_at, attributes.
fn response_record(r: &Row, response_id: String) -> StoreResult<ResponseRecord> {
    Ok(ResponseRecord {
        response_id,
        account_id: r.get(1),
        survey: parse_survey(r.get(2))?,
        scale: Scale { min: r.get(3), max: r.get(4) },
        score: r.get(5),
        verbatim: r.get(6),
        submitted_at: r.get(7),
        attributes: parse_attributes(r.get(8))?,
    })
}

/// The URL with its password replaced, for messages and logs.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Takes a transaction-scoped advisory lock on `scope`/`key`: a second writer of the same thing,
/// on any replica, waits until this transaction ends.
fn lock(tx: &mut Transaction, scope: &str, key: &str) -> StoreResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&format!("verbatim/{scope}/{key}")])?;
    Ok(())
}

/// Marks the active model changed in place (see [`ThemeStamp`]).
fn new_revision(tx: &mut Transaction, workspace: &str) -> StoreResult<()> {
    tx.execute("UPDATE theme_state SET revision = revision + 1 WHERE workspace = $1", &[&workspace])?;
    Ok(())
}

fn active_version(c: &mut impl GenericClient, workspace: &str) -> StoreResult<Option<i64>> {
    Ok(c.query_opt("SELECT active_version FROM theme_state WHERE workspace = $1", &[&workspace])?.map(|r| r.get(0)))
}

fn load_active_model(c: &mut impl GenericClient, workspace: &str) -> StoreResult<Option<ThemeModel>> {
    let Some(version) = active_version(c, workspace)? else { return Ok(None) };
    let m = c.query_one(
        "SELECT created_at, k, assign_threshold, segments FROM theme_models WHERE workspace = $1 AND version = $2",
        &[&workspace, &version],
    )?;
    let themes = c
        .query(&format!("{THEME_COLUMNS} WHERE workspace = $1 AND version = $2 ORDER BY size DESC, theme_id"), &[&workspace, &version])?
        .iter()
        .map(theme_row)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(ThemeModel {
        version,
        created_at: rfc3339(m.get(0)),
        k: m.get::<_, i64>(1) as usize,
        assign_threshold: m.get(2),
        segments: m.get::<_, i64>(3) as u64,
        themes,
    }))
}

const THEME_COLUMNS: &str = "SELECT theme_id, label, name, keywords, quotes, centroid, size, pinned FROM themes";

fn load_theme(c: &mut impl GenericClient, workspace: &str, version: i64, theme_id: i64) -> StoreResult<Option<Theme>> {
    c.query_opt(&format!("{THEME_COLUMNS} WHERE workspace = $1 AND version = $2 AND theme_id = $3"), &[&workspace, &version, &theme_id])?
        .map(|r| theme_row(&r))
        .transpose()
}

fn theme_row(r: &Row) -> StoreResult<Theme> {
    stored_theme(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))
}

/// Segment positions and sizes are stored as INTEGER: a verbatim is far below 2 GiB.
fn int(v: u32) -> i32 {
    i32::try_from(v).expect("segment offsets and counts fit in INTEGER")
}

impl Store for PostgresStore {
    fn response_hash(&self, workspace: &str, response_id: &str) -> StoreResult<Option<String>> {
        self.with_conn(|c| {
            Ok(c.query_opt("SELECT content_hash FROM responses WHERE workspace = $1 AND response_id = $2", &[&workspace, &response_id])?
                .map(|r| r.get(0)))
        })
    }

    fn upsert_response(
        &self,
        workspace: &str,
        record: &ResponseRecord,
        content_hash: &str,
        truncated: bool,
        segments: &[SegmentRecord],
    ) -> StoreResult<WriteOutcome> {
        self.with_tx(|tx| {
            lock(tx, "response", &format!("{workspace}\u{1f}{}", record.response_id))?;
            let existing = tx.query_opt(
                "SELECT id, content_hash FROM responses WHERE workspace = $1 AND response_id = $2",
                &[&workspace, &record.response_id],
            )?;
            let now = now();
            let attributes = attributes_json(&record.attributes);
            let fields: [&(dyn ToSql + Sync); 11] = [
                &record.account_id,
                &record.survey.as_str(),
                &record.scale.min,
                &record.scale.max,
                &record.score,
                &record.verbatim,
                &record.submitted_at,
                &attributes,
                &content_hash,
                &truncated,
                &now,
            ];
            let (id, outcome): (i64, _) = match existing {
                Some(row) if row.get::<_, &str>(1) == content_hash => return Ok(WriteOutcome::Unchanged),
                Some(row) => {
                    let id: i64 = row.get(0);
                    tx.execute(
                        "UPDATE responses SET account_id = $1, survey = $2, scale_min = $3, scale_max = $4, score = $5,
                         verbatim = $6, submitted_at = $7, attributes = $8, content_hash = $9, truncated = $10,
                         updated_at = $11 WHERE id = $12",
                        &[&fields[..], &[&id as &(dyn ToSql + Sync)]].concat(),
                    )?;
                    tx.execute("DELETE FROM segments WHERE response = $1", &[&id])?;
                    (id, WriteOutcome::Updated)
                }
                None => {
                    let row = tx.query_one(
                        "INSERT INTO responses (account_id, survey, scale_min, scale_max, score, verbatim, submitted_at,
                         attributes, content_hash, truncated, received_at, updated_at, workspace, response_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13) RETURNING id",
                        &[&fields[..], &[&workspace as &(dyn ToSql + Sync), &record.response_id]].concat(),
                    )?;
                    (row.get(0), WriteOutcome::Inserted)
                }
            };
            // All segments in one statement, as columns (one round trip, not one per segment).
            let column = |f: &dyn Fn(&SegmentRecord) -> u32| segments.iter().map(|s| int(f(s))).collect::<Vec<i32>>();
            let sentiment = |f: &dyn Fn(&Sentiment) -> f32| segments.iter().map(|s| s.sentiment.as_ref().map(f)).collect::<Vec<_>>();
            tx.execute(
                "INSERT INTO segments (response, idx, text, start_byte, end_byte, tokens, embedding, sentiment_label,
                 sentiment_score, theme_id, theme_similarity, theme_version, sentiment_negative, sentiment_neutral,
                 sentiment_positive)
                 SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::int[], $5::int[], $6::int[], $7::bytea[], $8::text[],
                 $9::real[], $10::bigint[], $11::real[], $12::bigint[], $13::real[], $14::real[], $15::real[])",
                &[
                    &id,
                    &column(&|s| s.index),
                    &segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(),
                    &column(&|s| s.start),
                    &column(&|s| s.end),
                    &column(&|s| s.tokens),
                    &segments.iter().map(|s| embedding_to_blob(&s.embedding)).collect::<Vec<_>>(),
                    &segments.iter().map(|s| s.sentiment.map(|x| x.label().as_str())).collect::<Vec<_>>(),
                    &sentiment(&|x| x.score()),
                    &segments.iter().map(|s| s.theme_id).collect::<Vec<_>>(),
                    &segments.iter().map(|s| s.theme_similarity).collect::<Vec<_>>(),
                    &segments.iter().map(|s| s.theme_version).collect::<Vec<_>>(),
                    &sentiment(&|x| x.probabilities[0]),
                    &sentiment(&|x| x.probabilities[1]),
                    &sentiment(&|x| x.probabilities[2]),
                ],
            )?;
            Ok(outcome)
        })
    }

    fn get_response(&self, workspace: &str, response_id: &str) -> StoreResult<Option<StoredResponse>> {
        self.with_snapshot(|tx| {
            let Some(r) = tx.query_opt(
                "SELECT id, account_id, survey, scale_min, scale_max, score, verbatim, submitted_at, attributes,
                 content_hash, truncated, received_at, updated_at FROM responses WHERE workspace = $1 AND response_id = $2",
                &[&workspace, &response_id],
            )?
            else {
                return Ok(None);
            };
            let id: i64 = r.get(0);
            let segments = tx
                .query(
                    "SELECT idx, text, start_byte, end_byte, tokens, embedding, sentiment_negative, sentiment_neutral,
                     sentiment_positive, theme_id, theme_similarity, theme_version FROM segments WHERE response = $1 ORDER BY idx",
                    &[&id],
                )?
                .iter()
                .map(|s| {
                    Ok(SegmentRecord {
                        index: s.get::<_, i32>(0) as u32,
                        text: s.get(1),
                        start: s.get::<_, i32>(2) as u32,
                        end: s.get::<_, i32>(3) as u32,
                        tokens: s.get::<_, i32>(4) as u32,
                        embedding: blob_to_embedding(s.get(5))?,
                        sentiment: stored_sentiment(s.get(6), s.get(7), s.get(8)),
                        theme_id: s.get(9),
                        theme_similarity: s.get(10),
                        theme_version: s.get(11),
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(StoredResponse {
                record: response_record(&r, response_id.to_string())?,
                content_hash: r.get(9),
                truncated: r.get(10),
                segments,
                received_at: r.get(11),
                updated_at: r.get(12),
            }))
        })
    }

    fn count_responses(&self, workspace: &str) -> StoreResult<u64> {
        self.with_conn(|c| Ok(c.query_one("SELECT COUNT(*) FROM responses WHERE workspace = $1", &[&workspace])?.get::<_, i64>(0) as u64))
    }

    fn count_segments(&self, workspace: &str) -> StoreResult<u64> {
        self.with_conn(|c| {
            let row = c.query_one(
                "SELECT COUNT(*) FROM segments JOIN responses ON responses.id = segments.response WHERE workspace = $1",
                &[&workspace],
            )?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn impact_input(&self, workspace: &str, since: i64) -> StoreResult<ImpactInput> {
        self.with_snapshot(|tx| {
            let mut input = ImpactInput {
                themes: load_active_model(tx, workspace)?.map(|m| m.themes).unwrap_or_default(),
                outcomes: outcomes(tx, workspace)?,
                ..ImpactInput::default()
            };
            let mut position = HashMap::new();
            for r in tx.query(
                "SELECT id, response_id, account_id, survey, scale_min, scale_max, score, submitted_at, attributes
                 FROM responses WHERE workspace = $1 AND submitted_at >= $2 ORDER BY id",
                &[&workspace, &since],
            )? {
                position.insert(r.get::<_, i64>(0), input.responses.len());
                input.responses.push(ResponseRecord {
                    response_id: r.get(1),
                    account_id: r.get(2),
                    survey: parse_survey(r.get(3))?,
                    scale: Scale { min: r.get(4), max: r.get(5) },
                    score: r.get(6),
                    verbatim: String::new(),
                    submitted_at: r.get(7),
                    attributes: parse_attributes(r.get(8))?,
                });
            }
            for r in tx.query(
                "SELECT s.response, s.theme_id, s.text, s.sentiment_negative, s.sentiment_neutral, s.sentiment_positive, s.theme_similarity
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = $1 AND r.submitted_at >= $2 AND s.theme_id IS NOT NULL
                   AND s.theme_version = (SELECT active_version FROM theme_state WHERE workspace = $1)
                 ORDER BY s.response, s.idx",
                &[&workspace, &since],
            )? {
                input.segments.push(SegmentTheme {
                    response: position[&r.get::<_, i64>(0)],
                    theme_id: r.get(1),
                    text: r.get(2),
                    sentiment: stored_sentiment(r.get(3), r.get(4), r.get(5)),
                    similarity: r.get(6),
                });
            }
            for r in tx.query("SELECT account_id, arr, churned_at, attributes FROM accounts WHERE workspace = $1 ORDER BY account_id", &[&workspace])? {
                input.accounts.push(AccountRecord { account_id: r.get(0), arr: r.get(1), churned_at: r.get(2), attributes: parse_attributes(r.get(3))? });
            }
            Ok(input)
        })
    }

    fn single_segment_verbatims(&self, workspace: &str) -> StoreResult<Vec<ScoredText>> {
        self.with_conn(|c| {
            c.query(
                "SELECT r.survey, r.scale_min, r.scale_max, r.score, MIN(s.text) FROM responses r
                 JOIN segments s ON s.response = r.id WHERE r.workspace = $1
                 GROUP BY r.id HAVING COUNT(*) = 1 ORDER BY r.id",
                &[&workspace],
            )?
            .iter()
            .map(|r| Ok(ScoredText { text: r.get(4), survey: parse_survey(r.get(0))?, scale: Scale { min: r.get(1), max: r.get(2) }, score: r.get(3) }))
            .collect()
        })
    }

    fn upsert_accounts(&self, workspace: &str, accounts: &[AccountRecord]) -> StoreResult<Vec<WriteOutcome>> {
        self.with_tx(|tx| {
            lock(tx, "accounts", workspace)?;
            let now = now();
            let select = tx.prepare(SELECT_ACCOUNT)?;
            let upsert = tx.prepare(
                "INSERT INTO accounts (workspace, account_id, arr, churned_at, attributes, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace, account_id) DO UPDATE SET arr = excluded.arr,
                 churned_at = COALESCE(excluded.churned_at, accounts.churned_at),
                 attributes = excluded.attributes, updated_at = excluded.updated_at",
            )?;
            let mut outcomes = Vec::with_capacity(accounts.len());
            for a in accounts {
                let outcome = account_write(read_account(tx, &select, workspace, &a.account_id)?.as_ref(), a);
                if outcome != WriteOutcome::Unchanged {
                    tx.execute(&upsert, &[&workspace, &a.account_id, &a.arr, &a.churned_at, &attributes_json(&a.attributes), &now])?;
                }
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }

    fn get_account(&self, workspace: &str, account_id: &str) -> StoreResult<Option<AccountRecord>> {
        self.with_conn(|c| read_account(c, SELECT_ACCOUNT, workspace, account_id))
    }

    fn record_outcomes(&self, workspace: &str, outcomes: &[OutcomeRecord]) -> StoreResult<Vec<WriteOutcome>> {
        self.with_tx(|tx| {
            lock(tx, "accounts", workspace)?;
            let now = now();
            // `xmax = 0` tells a fresh row from an updated one; no row back means nothing changed.
            let insert = tx.prepare(
                "INSERT INTO outcomes (workspace, account_id, kind, occurred_at, arr_change, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workspace, account_id, kind, occurred_at) DO UPDATE SET arr_change = excluded.arr_change
                 WHERE outcomes.arr_change IS DISTINCT FROM excluded.arr_change
                 RETURNING xmax = 0",
            )?;
            let mark_churned = tx.prepare(
                "UPDATE accounts SET churned_at = LEAST(COALESCE(churned_at, $3), $3), updated_at = $4
                 WHERE workspace = $1 AND account_id = $2",
            )?;
            let mut written = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                let row = tx.query_opt(&insert, &[&workspace, &o.account_id, &o.kind.as_str(), &o.occurred_at, &o.arr_change, &now])?;
                if o.kind == OutcomeKind::Churn {
                    tx.execute(&mark_churned, &[&workspace, &o.account_id, &o.occurred_at, &now])?;
                }
                written.push(match row.map(|r| r.get::<_, bool>(0)) {
                    None => WriteOutcome::Unchanged,
                    Some(true) => WriteOutcome::Inserted,
                    Some(false) => WriteOutcome::Updated,
                });
            }
            Ok(written)
        })
    }

    fn get_outcome(&self, workspace: &str, account_id: &str, kind: OutcomeKind, occurred_at: i64) -> StoreResult<Option<OutcomeRecord>> {
        self.with_conn(|c| {
            let row = c.query_opt(
                "SELECT arr_change FROM outcomes WHERE workspace = $1 AND account_id = $2 AND kind = $3 AND occurred_at = $4",
                &[&workspace, &account_id, &kind.as_str(), &occurred_at],
            )?;
            Ok(row.map(|r| OutcomeRecord { account_id: account_id.to_string(), kind, occurred_at, arr_change: r.get(0) }))
        })
    }

    fn list_outcomes(&self, workspace: &str) -> StoreResult<Vec<OutcomeRecord>> {
        self.with_conn(|c| outcomes(c, workspace))
    }

    fn theme_segments(&self, workspace: &str, since: Option<i64>) -> StoreResult<Vec<ThemeSegment>> {
        self.with_conn(|c| {
            c.query(
                "SELECT r.response_id, s.idx, s.text, s.embedding,
                 CASE WHEN s.theme_version = (SELECT active_version FROM theme_state WHERE workspace = $1) THEN s.theme_id END
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = $1 AND r.submitted_at >= $2 ORDER BY r.response_id COLLATE \"C\", s.idx",
                &[&workspace, &since.unwrap_or(i64::MIN)],
            )?
            .iter()
            .map(|r| {
                Ok(ThemeSegment { response_id: r.get(0), index: r.get::<_, i32>(1) as u32, text: r.get(2), embedding: blob_to_embedding(r.get(3))?, theme_id: r.get(4) })
            })
            .collect()
        })
    }

    fn theme_history(&self, workspace: &str) -> StoreResult<History> {
        self.with_snapshot(|tx| {
            let next_id = tx.query_opt("SELECT next_theme_id FROM theme_state WHERE workspace = $1", &[&workspace])?.map(|r| r.get(0));
            let merged = tx
                .query("SELECT centroid, target_id FROM theme_merges WHERE workspace = $1 ORDER BY source_id", &[&workspace])?
                .iter()
                .map(|r| Ok((blob_to_embedding(r.get(0))?, r.get(1))))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(History { active: load_active_model(tx, workspace)?, merged, next_id: next_id.unwrap_or(1), prior: Vec::new() })
        })
    }

    fn active_theme_stamp(&self, workspace: &str) -> StoreResult<Option<ThemeStamp>> {
        self.with_conn(|c| {
            Ok(c.query_opt("SELECT active_version, revision FROM theme_state WHERE workspace = $1", &[&workspace])?
                .map(|r| ThemeStamp { version: r.get(0), revision: r.get(1) }))
        })
    }

    fn active_theme_model(&self, workspace: &str) -> StoreResult<Option<ThemeModel>> {
        self.with_snapshot(|tx| load_active_model(tx, workspace))
    }

    fn activate_theme_model(&self, workspace: &str, new: &NewThemeModel) -> StoreResult<i64> {
        self.with_tx(|tx| {
            lock(tx, "themes", workspace)?;
            let version: i64 =
                tx.query_one("SELECT COALESCE(MAX(version), 0) + 1 FROM theme_models WHERE workspace = $1", &[&workspace])?.get(0);
            let m = new.model;
            tx.execute(
                "INSERT INTO theme_models (workspace, version, created_at, k, assign_threshold, segments, params)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&workspace, &version, &now(), &(m.k as i64), &m.assign_threshold, &(m.segments as i64), &new.params],
            )?;
            let insert = tx.prepare(
                "INSERT INTO themes (workspace, version, theme_id, label, name, keywords, quotes, centroid, size, pinned)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )?;
            for t in &m.themes {
                tx.execute(
                    &insert,
                    &[&workspace, &version, &t.id, &t.label, &t.name, &json(&t.keywords), &json(&t.quotes), &embedding_to_blob(&t.centroid), &(t.size as i64), &t.pinned],
                )?;
            }
            // The assignments go as arrays, one statement per half (not one round trip each);
            // the fault point between the halves tests that a crash leaves the old model active.
            let (first, second) = new.assignments.split_at(new.assignments.len() / 2);
            for (i, half) in [first, second].into_iter().enumerate() {
                if i == 1 {
                    crate::fault::point("recluster.activate");
                }
                let ids: Vec<&str> = half.iter().map(|a| a.0).collect();
                let indexes: Vec<i32> = half.iter().map(|a| int(a.1)).collect();
                let themes: Vec<i64> = half.iter().map(|a| a.2).collect();
                let similarities: Vec<f32> = half.iter().map(|a| a.3).collect();
                tx.execute(
                    "UPDATE segments s SET theme_id = a.theme, theme_similarity = a.similarity, theme_version = $6
                     FROM UNNEST($2::text[], $3::int[], $4::bigint[], $5::real[]) AS a (response_id, idx, theme, similarity),
                          responses r
                     WHERE r.workspace = $1 AND r.response_id = a.response_id AND s.response = r.id AND s.idx = a.idx",
                    &[&workspace, &ids, &indexes, &themes, &similarities, &version],
                )?;
            }
            tx.execute(
                "INSERT INTO theme_state (workspace, active_version, next_theme_id) VALUES ($1, $2, $3)
                 ON CONFLICT (workspace) DO UPDATE SET active_version = excluded.active_version,
                 next_theme_id = GREATEST(theme_state.next_theme_id, excluded.next_theme_id)",
                &[&workspace, &version, &new.next_theme_id],
            )?;
            Ok(version)
        })
    }

    fn rename_theme(&self, workspace: &str, theme_id: i64, name: Option<&str>) -> StoreResult<Option<Theme>> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        self.set_active_theme_column(workspace, theme_id, "name", &name)
    }

    fn pin_theme(&self, workspace: &str, theme_id: i64, pinned: bool) -> StoreResult<Option<Theme>> {
        self.set_active_theme_column(workspace, theme_id, "pinned", &pinned)
    }

    fn merge_themes(&self, workspace: &str, source: i64, target: i64) -> StoreResult<Option<Theme>> {
        self.with_tx(|tx| {
            lock(tx, "themes", workspace)?;
            let Some(version) = active_version(tx, workspace)? else { return Ok(None) };
            let (Some(from), Some(into)) = (load_theme(tx, workspace, version, source)?, load_theme(tx, workspace, version, target)?) else {
                return Ok(None);
            };
            let centroid = merged_centroid(&into, &from);
            tx.execute(
                "UPDATE segments SET theme_id = $4 WHERE theme_id = $3 AND theme_version = $2
                 AND response IN (SELECT id FROM responses WHERE workspace = $1)",
                &[&workspace, &version, &source, &target],
            )?;
            tx.execute(
                "UPDATE themes SET centroid = $4, size = size + $5 WHERE workspace = $1 AND version = $2 AND theme_id = $3",
                &[&workspace, &version, &target, &embedding_to_blob(&centroid), &(from.size as i64)],
            )?;
            tx.execute("DELETE FROM themes WHERE workspace = $1 AND version = $2 AND theme_id = $3", &[&workspace, &version, &source])?;
            tx.execute("UPDATE theme_merges SET target_id = $3 WHERE workspace = $1 AND target_id = $2", &[&workspace, &source, &target])?;
            tx.execute(
                "INSERT INTO theme_merges (workspace, source_id, target_id, centroid, merged_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (workspace, source_id) DO UPDATE SET target_id = excluded.target_id,
                 centroid = excluded.centroid, merged_at = excluded.merged_at",
                &[&workspace, &source, &target, &embedding_to_blob(&from.centroid), &now()],
            )?;
            new_revision(tx, workspace)?;
            load_theme(tx, workspace, version, target)
        })
    }

    fn theme_assignments(&self, workspace: &str) -> StoreResult<Vec<AssignmentRow>> {
        self.with_snapshot(|tx| {
            let version = active_version(tx, workspace)?.unwrap_or(-1);
            Ok(tx
                .query(
                    "SELECT r.response_id, s.idx, s.text, t.theme_id, COALESCE(t.name, t.label)
                     FROM segments s JOIN responses r ON r.id = s.response
                     LEFT JOIN themes t ON t.workspace = r.workspace AND t.version = $2 AND t.theme_id = s.theme_id
                          AND s.theme_version = $2
                     WHERE r.workspace = $1 ORDER BY r.submitted_at, r.id, s.idx",
                    &[&workspace, &version],
                )?
                .iter()
                .map(|r| AssignmentRow {
                    response_id: r.get(0),
                    segment_index: r.get::<_, i32>(1) as u32,
                    segment_text: r.get(2),
                    theme_id: r.get(3),
                    theme_label: r.get(4),
                })
                .collect())
        })
    }

    fn theme_segment_page(&self, workspace: &str, q: &ThemeSegmentQuery) -> StoreResult<ThemeSegmentPage> {
        self.with_snapshot(|tx| {
            let Some(version) = active_version(tx, workspace)? else { return Ok(ThemeSegmentPage::default()) };
            let after = q.after.as_ref();
            let rows = tx.query(
                "SELECT r.response_id, r.account_id, r.survey, r.scale_min, r.scale_max, r.score, r.verbatim, r.submitted_at,
                        r.attributes, s.idx, s.text, s.sentiment_negative, s.sentiment_neutral, s.sentiment_positive,
                        s.theme_similarity
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = $1 AND s.theme_version = $2 AND s.theme_id = $3
                   AND r.submitted_at >= $4 AND r.submitted_at < $5 AND ($6::TEXT IS NULL OR s.sentiment_label = $6)
                   AND ($7::BIGINT IS NULL OR r.submitted_at < $7
                        OR (r.submitted_at = $7 AND (r.response_id < $8 OR (r.response_id = $8 AND s.idx > $9))))
                 ORDER BY r.submitted_at DESC, r.response_id DESC, s.idx
                 LIMIT $10",
                &[
                    &workspace,
                    &version,
                    &q.theme_id,
                    &q.since.unwrap_or(i64::MIN),
                    &q.until.unwrap_or(i64::MAX),
                    &q.sentiment.map(|l| l.as_str()),
                    &after.map(|a| a.submitted_at),
                    &after.map(|a| a.response_id.as_str()),
                    &after.map(|a| a.index as i32),
                    &(q.limit as i64 + 1),
                ],
            )?;
            let mut segments = Vec::new();
            for r in &rows {
                let response = response_record(r, r.get(0))?;
                let sentiment = stored_sentiment(r.get(11), r.get(12), r.get(13));
                let similarity: Option<f32> = r.get(14);
                segments.push(ThemeSegmentHit { response, index: r.get::<_, i32>(9) as u32, text: r.get(10), sentiment, similarity: similarity.unwrap_or(0.0) });
            }
            let more = segments.len() > q.limit;
            segments.truncate(q.limit);
            Ok(ThemeSegmentPage { version, segments, more })
        })
    }

    fn erase(&self, workspace: &str, what: &Erasure) -> StoreResult<ErasureSummary> {
        self.with_tx(|tx| {
            let mut summary = ErasureSummary::default();
            let mut texts = std::collections::HashSet::new();
            match what {
                Erasure::Responses(ids) => {
                    // The same locks as a write of these responses: an erase and a resubmit of
                    // one response run one after the other. Taken in sorted order, so two erases
                    // of overlapping lists wait for each other instead of deadlocking.
                    let mut sorted: Vec<&String> = ids.iter().collect();
                    sorted.sort();
                    sorted.dedup();
                    for id in sorted {
                        lock(tx, "response", &format!("{workspace}\u{1f}{id}"))?;
                    }
                    erase_where(tx, workspace, "workspace = $1 AND response_id = ANY($2)", ids, &mut texts, &mut summary)?;
                }
                Erasure::Account(account) => {
                    lock(tx, "accounts", workspace)?;
                    erase_where(tx, workspace, "workspace = $1 AND account_id = $2", account, &mut texts, &mut summary)?;
                    summary.outcomes = tx.execute("DELETE FROM outcomes WHERE workspace = $1 AND account_id = $2", &[&workspace, account])?;
                    summary.accounts = tx.execute("DELETE FROM accounts WHERE workspace = $1 AND account_id = $2", &[&workspace, account])?;
                }
                Erasure::SubmittedBefore(t) => erase_where(tx, workspace, "workspace = $1 AND submitted_at < $2", t, &mut texts, &mut summary)?,
            }
            if !texts.is_empty() {
                // Under the lock a recluster takes, so a model being activated is scrubbed too.
                lock(tx, "themes", workspace)?;
                for row in tx.query("SELECT version, theme_id, quotes FROM themes WHERE workspace = $1", &[&workspace])? {
                    let (version, theme_id): (i64, i64) = (row.get(0), row.get(1));
                    if let Some((kept, removed)) = scrub_quotes(row.get(2), &texts)? {
                        tx.execute(
                            "UPDATE themes SET quotes = $1 WHERE workspace = $2 AND version = $3 AND theme_id = $4",
                            &[&kept, &workspace, &version, &theme_id],
                        )?;
                        summary.quotes += removed;
                    }
                }
                if summary.quotes > 0 {
                    new_revision(tx, workspace)?;
                }
            }
            Ok(summary)
        })
    }

    fn workspaces(&self) -> StoreResult<Vec<String>> {
        self.with_conn(|c| Ok(c.query("SELECT DISTINCT workspace FROM responses ORDER BY workspace", &[])?.iter().map(|r| r.get(0)).collect()))
    }

    fn claim_recluster(&self, workspace: &str, now: i64, due_before: i64, retry_before: i64) -> StoreResult<bool> {
        self.with_tx(|tx| {
            lock(tx, "recluster-claim", workspace)?;
            let row = tx.query_one(
                "SELECT (SELECT m.created_at FROM theme_state s JOIN theme_models m ON m.workspace = s.workspace AND m.version = s.active_version
                         WHERE s.workspace = $1),
                        (SELECT claimed_at FROM recluster_claims WHERE workspace = $1)",
                &[&workspace],
            )?;
            let due = recluster_due(row.get(0), row.get(1), due_before, retry_before);
            if due {
                tx.execute(
                    "INSERT INTO recluster_claims (workspace, claimed_at) VALUES ($1, $2)
                     ON CONFLICT (workspace) DO UPDATE SET claimed_at = excluded.claimed_at",
                    &[&workspace, &now],
                )?;
            }
            Ok(due)
        })
    }

    fn insert_api_token(&self, workspace: &str, name: &str, scopes: &[Scope], token_hash: &str, expires_at: Option<i64>) -> StoreResult<Option<ApiToken>> {
        let created_at = now();
        self.with_tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO api_tokens (workspace, name, scopes, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&workspace, &name, &scopes_column(scopes), &token_hash, &created_at, &expires_at],
            )?;
            Ok((inserted == 1).then(|| new_api_token(workspace, name, scopes, created_at, expires_at)))
        })
    }

    fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        self.with_conn(|c| {
            c.query_opt(
                "SELECT workspace, name, scopes, created_at, revoked_at, expires_at, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                &[&token_hash],
            )?
            .map(|r| api_token(&r))
            .transpose()
        })
    }

    fn has_api_tokens(&self) -> StoreResult<bool> {
        self.with_conn(|c| Ok(c.query_one("SELECT EXISTS (SELECT 1 FROM api_tokens)", &[])?.get(0)))
    }

    fn touch_api_token(&self, token_hash: &str, at: i64) -> StoreResult<()> {
        self.with_conn(|c| {
            c.execute("UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at < $2)", &[&token_hash, &at])?;
            Ok(())
        })
    }

    fn list_api_tokens(&self, workspace: &str) -> StoreResult<Vec<ApiToken>> {
        self.with_conn(|c| {
            c.query("SELECT workspace, name, scopes, created_at, revoked_at, expires_at, last_used_at FROM api_tokens WHERE workspace = $1 ORDER BY id", &[&workspace])?
                .iter()
                .map(api_token)
                .collect()
        })
    }

    fn revoke_api_token(&self, workspace: &str, name: &str) -> StoreResult<bool> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = $1 WHERE workspace = $2 AND name = $3 AND revoked_at IS NULL",
                &[&now(), &workspace, &name],
            )?;
            Ok(n > 0)
        })
    }
}

/// Deletes the workspace's responses matching `filter` (binding $1 = workspace, $2 = `key`); their
/// segments go with them (ON DELETE CASCADE), their texts are added to `texts`.
fn erase_where(
    tx: &mut Transaction,
    workspace: &str,
    filter: &str,
    key: &(dyn ToSql + Sync),
    texts: &mut std::collections::HashSet<String>,
    summary: &mut ErasureSummary,
) -> StoreResult<()> {
    let sql = format!("SELECT segments.text FROM segments JOIN responses ON responses.id = segments.response WHERE {filter}");
    for row in tx.query(&sql, &[&workspace, key])? {
        texts.insert(row.get(0));
        summary.segments += 1;
    }
    let days = tx.query(&format!("SELECT DISTINCT {SUBMITTED_DAY_SQL} FROM responses WHERE {filter}"), &[&workspace, key])?;
    summary.add_submitted_days(days.iter().map(|r| r.get::<_, i64>(0)));
    summary.responses += tx.execute(&format!("DELETE FROM responses WHERE {filter}"), &[&workspace, key])?;
    Ok(())
}

fn api_token(r: &Row) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        workspace: r.get(0),
        name: r.get(1),
        scopes: parse_scopes(r.get(2))?,
        created_at: r.get(3),
        revoked_at: r.get(4),
        expires_at: r.get(5),
        last_used_at: r.get(6),
    })
}

const SELECT_ACCOUNT: &str = "SELECT arr, churned_at, attributes FROM accounts WHERE workspace = $1 AND account_id = $2";

/// One account, read by `select` ([`SELECT_ACCOUNT`], or that statement prepared for a batch).
fn read_account(c: &mut impl GenericClient, select: &(impl ToStatement + ?Sized), workspace: &str, account_id: &str) -> StoreResult<Option<AccountRecord>> {
    c.query_opt(select, &[&workspace, &account_id])?
        .map(|r| Ok(AccountRecord { account_id: account_id.to_string(), arr: r.get(0), churned_at: r.get(1), attributes: parse_attributes(r.get(2))? }))
        .transpose()
}

fn outcomes(c: &mut impl GenericClient, workspace: &str) -> StoreResult<Vec<OutcomeRecord>> {
    c.query("SELECT account_id, kind, occurred_at, arr_change FROM outcomes WHERE workspace = $1 ORDER BY occurred_at, account_id, kind", &[&workspace])?
        .iter()
        .map(|r| Ok(OutcomeRecord { account_id: r.get(0), kind: parse_outcome_kind(r.get(1))?, occurred_at: r.get(2), arr_change: r.get(3) }))
        .collect()
}

/// A throwaway database on a PostgreSQL server, for tests and benches: created under a unique
/// name, dropped with its connections when this is dropped. The admin work runs on a thread of its
/// own, so it may be created and dropped on an async runtime.
pub struct ScratchDatabase {
    server: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// On the server `VERBATIM_TEST_POSTGRES` names; `None` (saying how to set it) when unset, but
    /// with `VERBATIM_REQUIRE_POSTGRES=1` (as in CI) an unset server panics instead of skipping.
    pub fn from_env() -> Option<Self> {
        let Ok(server) = std::env::var("VERBATIM_TEST_POSTGRES") else {
            assert!(
                std::env::var("VERBATIM_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "VERBATIM_REQUIRE_POSTGRES=1 but VERBATIM_TEST_POSTGRES names no server (eval \"$(.ci/postgres.sh)\")"
            );
            eprintln!("skipped: no PostgreSQL server (eval \"$(.ci/postgres.sh)\" sets VERBATIM_TEST_POSTGRES)");
            return None;
        };
        Some(Self::create(&server).expect("VERBATIM_TEST_POSTGRES accepts connections and may create databases"))
    }

    /// A new database on `server` (a `postgres://` URL whose role may create databases).
    pub fn create(server: &str) -> StoreResult<Self> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let name = format!("verbatim_scratch_{}_{n}_{nanos}", std::process::id());
        let (base, rest) = server.rsplit_once('/').ok_or_else(|| StoreError::Open { path: redacted(server), detail: "no database in the URL".into() })?;
        let query = rest.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
        let db = Self { server: server.to_string(), url: format!("{base}/{name}{query}"), name };
        db.admin(&format!("CREATE DATABASE {}", db.name))?;
        Ok(db)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store (a replica) on this database.
    pub fn open(&self) -> StoreResult<PostgresStore> {
        PostgresStore::open(&self.url)
    }

    fn admin(&self, sql: &str) -> StoreResult<()> {
        let (server, sql) = (self.server.clone(), sql.to_string());
        let name = redacted(&server);
        std::thread::spawn(move || -> StoreResult<()> {
            let mut client = Target::parse(&server, &name)?.connect()?;
            Ok(client.batch_execute(&sql)?)
        })
        .join()
        .expect("the admin thread does not panic")
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.admin(&format!("DROP DATABASE {} WITH (FORCE)", self.name)) {
            eprintln!("scratch database {} left behind: {e}", self.name);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::contract::{response, segment};

    fn open() -> Option<(ScratchDatabase, PostgresStore)> {
        let db = ScratchDatabase::from_env()?;
        let store = db.open().unwrap();
        Some((db, store))
    }

    crate::store::contract::tests!(open);

    #[test]
    fn replicas_racing_on_one_response_store_it_once() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        let replicas = [db.open().unwrap(), db.open().unwrap()];
        let r = response("r1", "Slow. Broken.");
        let segs = [segment(0, "Slow."), segment(1, "Broken.")];
        let outcomes: Vec<WriteOutcome> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..8).map(|i| s.spawn({
                let (store, r, segs) = (&replicas[i % 2], &r, &segs);
                move || store.upsert_response("w", r, "h1", false, segs).unwrap()
            })).collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| **o == WriteOutcome::Inserted).count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| **o == WriteOutcome::Unchanged).count(), 7, "{outcomes:?}");
        for store in &replicas {
            assert_eq!((store.count_responses("w").unwrap(), store.count_segments("w").unwrap()), (1, 2));
        }
    }

    #[test]
    fn two_reclusters_at_once_get_versions_one_after_the_other() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        let replicas = [db.open().unwrap(), db.open().unwrap()];
        replicas[0].upsert_response("w", &response("r1", "Slow."), "h1", false, &[segment(0, "Slow.")]).unwrap();
        let theme = Theme { id: 1, label: "slow".into(), name: None, keywords: vec![], quotes: vec![], centroid: vec![1.0, 0.0, 0.0], size: 1, pinned: false };
        let model = ThemeModel { version: 0, created_at: String::new(), k: 1, assign_threshold: 0.2, segments: 1, themes: vec![theme] };
        let mut versions: Vec<i64> = std::thread::scope(|s| {
            let calls: Vec<_> = replicas.iter().map(|store| s.spawn(|| {
                let new = NewThemeModel { model: &model, assignments: vec![("r1", 0, 1, 0.9)], next_theme_id: 2, params: "{}".into() };
                store.activate_theme_model("w", &new).unwrap()
            })).collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        versions.sort();
        assert_eq!(versions, [1, 2]);
        assert_eq!(replicas[1].active_theme_stamp("w").unwrap().map(|s| s.version), Some(2), "the later one is active");
    }

    #[test]
    fn a_dropped_connection_fails_one_call_as_unavailable_and_the_next_reconnects() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        let store = db.open().unwrap();
        // Two connections in the pool: two calls at once.
        std::thread::scope(|s| {
            let calls = [s.spawn(|| store.theme_history("w")), s.spawn(|| store.theme_history("w"))];
            for call in calls {
                call.join().unwrap().unwrap();
            }
        });
        // The server ends every session on the database (as a restart or failover would), and
        // the pooled connection has not noticed yet.
        let mut admin = Target::parse(db.url(), "test").unwrap().connect().unwrap();
        let sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", &[]).unwrap();
        while admin.query_one(sessions, &[]).unwrap().get::<_, i64>(0) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let err = store.count_responses("w").expect_err("the pooled connection is gone");
        assert!(err.is_unavailable(), "{err}");
        assert_eq!(store.count_responses("w").unwrap(), 0, "the next call reconnects");
        store.upsert_response("w", &response("r1", "x"), "h", false, &[segment(0, "x")]).unwrap();
    }

    #[test]
    fn a_schema_from_a_newer_verbatim_is_refused() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        db.open().unwrap().upsert_response("w", &response("r1", "x"), "h", false, &[segment(0, "x")]).unwrap();
        let reopened = db.open().unwrap();
        assert_eq!(reopened.get_response("w", "r1").unwrap().unwrap().segments.len(), 1, "reopening keeps data and schema");
        let mut client = Target::parse(db.url(), "test").unwrap().connect().unwrap();
        client.batch_execute("UPDATE verbatim_schema SET version = 99").unwrap();
        let err = db.open().err().expect("a newer schema is refused");
        assert!(err.to_string().contains("newer than this Verbatim"), "{err}");
    }

    /// `sslmode=verify-full` with the test CA of .ci/postgres.sh: the store works over TLS, and a
    /// server whose certificate chains to no trusted root is refused, not used in plain text.
    #[test]
    fn tls_connections_verify_the_server_certificate() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        let Ok(ca) = std::env::var("VERBATIM_TEST_POSTGRES_CA") else {
            assert!(std::env::var("VERBATIM_REQUIRE_POSTGRES").as_deref() != Ok("1"), "VERBATIM_TEST_POSTGRES_CA names no CA (eval \"$(.ci/postgres.sh)\")");
            return;
        };
        let with = |options: &str| format!("{}{}{options}", db.url(), if db.url().contains('?') { '&' } else { '?' });
        let url = with(&format!("sslmode=verify-full&sslrootcert={ca}"));
        let store = PostgresStore::open(&url).unwrap();
        store.upsert_response("w", &response("r1", "x"), "h", false, &[segment(0, "x")]).unwrap();
        assert_eq!(store.count_responses("w").unwrap(), 1);
        let mut client = store.connection().unwrap();
        let (ssl, version): (bool, String) =
            client.query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).map(|r| (r.get(0), r.get(1))).unwrap();
        assert!(ssl && version.starts_with("TLS"), "{ssl} {version}");
        drop(client);
        // Mozilla's roots do not know the test CA.
        let err = PostgresStore::open(&with("sslmode=require")).err().expect("an unknown CA is refused");
        assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
        // Plain TCP stays the default.
        let mut plain = Target::parse(db.url(), "test").unwrap().connect().unwrap();
        assert!(!plain.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get::<_, bool>(0));
    }

    #[test]
    fn a_client_certificate_logs_in_where_the_server_asks_for_one() {
        let Some(db) = ScratchDatabase::from_env() else { return };
        let env = |name: &str| std::env::var(name).ok();
        let (Some(ca), Some(cert), Some(key)) = (env("VERBATIM_TEST_POSTGRES_CA"), env("VERBATIM_TEST_POSTGRES_CLIENT_CERT"), env("VERBATIM_TEST_POSTGRES_CLIENT_KEY")) else {
            assert!(env("VERBATIM_REQUIRE_POSTGRES").as_deref() != Some("1"), "no client certificate for the test server (eval \"$(.ci/postgres.sh)\")");
            return;
        };
        // The role verbatim_cert has no password: the test server lets it in by certificate only.
        let base = db.url().replacen("://verbatim:verbatim@", "://verbatim_cert@", 1);
        let url = |options: &str| format!("{base}{}sslmode=verify-full&sslrootcert={ca}{options}", if base.contains('?') { '&' } else { '?' });
        let mut client = Target::parse(&url(&format!("&sslcert={cert}&sslkey={key}")), "test").unwrap().connect().unwrap();
        let row = client.query_one("SELECT current_user::text, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap();
        assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("verbatim_cert".to_string(), "/CN=verbatim_cert".to_string()));
        // Without the certificate the same role is refused, and the error says by what.
        let err = Target::parse(&url(""), "test").unwrap().connect().err().expect("no certificate, no login").to_string();
        assert!(err.contains("certificate"), "{err}");
        // A certificate of the right CA for another name does not log in as verbatim_cert.
        let server = std::path::Path::new(&ca).with_file_name("server.pem");
        let server_key = server.with_file_name("server.key");
        let err = Target::parse(&url(&format!("&sslcert={}&sslkey={}", server.display(), server_key.display())), "test").unwrap().connect().err().expect("CN localhost is not verbatim_cert").to_string();
        assert!(err.contains("verbatim_cert"), "{err}");
    }

    #[test]
    fn urls_are_told_from_files_and_passwords_never_shown() {
        assert!(is_url("postgres://v@db/verbatim") && is_url("postgresql://v@db/verbatim"));
        assert!(!is_url("verbatim.db") && !is_url("/var/lib/verbatim/postgres.db"));
        assert_eq!(redacted("postgres://verbatim:s3cret@db.internal:5432/verbatim"), "postgres://verbatim:***@db.internal:5432/verbatim");
        assert_eq!(redacted("postgres://verbatim@db/verbatim"), "postgres://verbatim@db/verbatim");
        // A refused connection names the database but not the password.
        let err = PostgresStore::open("postgres://verbatim:s3cret@127.0.0.1:1/verbatim").err().expect("nothing listens on port 1");
        let message = err.to_string();
        assert!(message.contains("127.0.0.1:1") && !message.contains("s3cret"), "{message}");
    }
}
