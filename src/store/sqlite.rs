//! The embedded default store: one SQLite file in WAL mode, schema migrations by `user_version`,
//! one transaction per write so a failure leaves nothing half-written.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::*;

/// Schema versions, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE responses (
    id            INTEGER PRIMARY KEY,
    workspace     TEXT    NOT NULL,
    response_id   TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    survey        TEXT    NOT NULL CHECK (survey IN ('NPS', 'CSAT', 'CES')),
    scale_min     INTEGER NOT NULL,
    scale_max     INTEGER NOT NULL CHECK (scale_max > scale_min),
    score         REAL    NOT NULL CHECK (score BETWEEN scale_min AND scale_max),
    verbatim      TEXT    NOT NULL,
    submitted_at  INTEGER NOT NULL,
    attributes    TEXT    NOT NULL DEFAULT '{}',
    content_hash  TEXT    NOT NULL,
    truncated     INTEGER NOT NULL DEFAULT 0,
    received_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (workspace, response_id)
);
CREATE INDEX responses_by_time ON responses (workspace, submitted_at);
CREATE INDEX responses_by_account ON responses (workspace, account_id);

CREATE TABLE segments (
    response          INTEGER NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
    idx               INTEGER NOT NULL,
    text              TEXT    NOT NULL,
    start_byte        INTEGER NOT NULL,
    end_byte          INTEGER NOT NULL,
    tokens            INTEGER NOT NULL,
    embedding         BLOB    NOT NULL,
    sentiment_label   TEXT,
    sentiment_score   REAL,
    theme_id          INTEGER,
    theme_similarity  REAL,
    PRIMARY KEY (response, idx)
) WITHOUT ROWID;

CREATE TABLE accounts (
    workspace   TEXT    NOT NULL,
    account_id  TEXT    NOT NULL,
    arr         REAL    NOT NULL CHECK (arr >= 0),
    churned_at  INTEGER,
    attributes  TEXT    NOT NULL DEFAULT '{}',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, account_id)
);

CREATE TABLE outcomes (
    workspace    TEXT    NOT NULL,
    account_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('churn', 'contraction', 'expansion')),
    occurred_at  INTEGER NOT NULL,
    arr_change   REAL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, account_id, kind, occurred_at)
);
"#, r#"
ALTER TABLE segments ADD COLUMN theme_version INTEGER;

-- One row per recluster that succeeded; `theme_state.active_version` points at the live one.
CREATE TABLE theme_models (
    workspace         TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    k                 INTEGER NOT NULL,
    assign_threshold  REAL    NOT NULL,
    segments          INTEGER NOT NULL,
    params            TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (workspace, version)
);

CREATE TABLE themes (
    workspace  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    theme_id   INTEGER NOT NULL,
    label      TEXT    NOT NULL,
    name       TEXT,
    keywords   TEXT    NOT NULL,
    quotes     TEXT    NOT NULL,
    centroid   BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    pinned     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, version, theme_id),
    FOREIGN KEY (workspace, version) REFERENCES theme_models (workspace, version)
);

CREATE TABLE theme_state (
    workspace       TEXT    PRIMARY KEY,
    active_version  INTEGER NOT NULL,
    next_theme_id   INTEGER NOT NULL
);

-- Themes a person merged away: later reclusters fold a cluster that matches `centroid` into
-- `target_id` again.
CREATE TABLE theme_merges (
    workspace  TEXT    NOT NULL,
    source_id  INTEGER NOT NULL,
    target_id  INTEGER NOT NULL,
    centroid   BLOB    NOT NULL,
    merged_at  INTEGER NOT NULL,
    PRIMARY KEY (workspace, source_id)
);
"#, r#"
-- The sentiment branch's calibrated probabilities per segment (label and score stay, for SQL).
ALTER TABLE segments ADD COLUMN sentiment_negative REAL;
ALTER TABLE segments ADD COLUMN sentiment_neutral  REAL;
ALTER TABLE segments ADD COLUMN sentiment_positive REAL;
"#, r#"
-- API tokens: only the SHA-256 of each secret. A name is unique among a workspace's active
-- tokens, and free again once revoked (revoked rows stay, as a record).
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    workspace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (workspace, name) WHERE revoked_at IS NULL;
"#, r#"
-- Bumped by every change to the active model that keeps its version (see `ThemeStamp`).
ALTER TABLE theme_state ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
"#, r#"
-- When a server last took a workspace's scheduled recluster (see `Store::claim_recluster`).
CREATE TABLE recluster_claims (
    workspace   TEXT    PRIMARY KEY,
    claimed_at  INTEGER NOT NULL
);
"#, r#"
-- A token may expire; when it was last used (written at most once a minute per token).
ALTER TABLE api_tokens ADD COLUMN expires_at   INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_used_at INTEGER;
"#, r#"
-- A theme's segments, read a page at a time (`Store::theme_segment_page`).
CREATE INDEX segments_by_theme ON segments (theme_id, theme_version);
"#];

/// A SQLite file shared by every workspace.
///
/// One connection behind a std `Mutex`: SQLite has a single writer anyway, every call is short
/// (no I/O-bound waits while holding the lock), and callers already run on blocking threads.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let open_err = |detail: String| StoreError::Open { path: path.display().to_string(), detail };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        // WAL lets readers proceed during a write; synchronous=FULL makes every acknowledged commit
        // survive a power cut, which is the promise the ingest API makes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut store = Self { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> StoreResult<()> {
        let conn = self.conn.get_mut().expect("not poisoned");
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this Verbatim ({}); upgrade Verbatim",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn with_tx<T>(&self, f: impl FnOnce(&Transaction) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Sets one curation column of a theme in the active model; the theme as it is now, if any.
    fn set_active_theme_column(&self, workspace: &str, theme_id: i64, column: &str, value: impl rusqlite::ToSql) -> StoreResult<Option<Theme>> {
        self.with_tx(|tx| {
            let Some(version) = active_version(tx, workspace)? else { return Ok(None) };
            tx.execute(
                &format!("UPDATE themes SET {column} = ?4 WHERE workspace = ?1 AND version = ?2 AND theme_id = ?3"),
                params![workspace, version, theme_id, value],
            )?;
            new_revision(tx, workspace)?;
            load_theme(tx, workspace, version, theme_id)
        })
    }

    fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }
}

/// Marks the active model changed in place (see [`ThemeStamp`]).
fn new_revision(tx: &Transaction, workspace: &str) -> StoreResult<()> {
    tx.execute("UPDATE theme_state SET revision = revision + 1 WHERE workspace = ?1", [workspace])?;
    Ok(())
}

fn active_version(c: &Connection, workspace: &str) -> StoreResult<Option<i64>> {
    Ok(c.query_row("SELECT active_version FROM theme_state WHERE workspace = ?1", [workspace], |r| r.get(0)).optional()?)
}

fn load_active_model(c: &Connection, workspace: &str) -> StoreResult<Option<ThemeModel>> {
    let Some(version) = active_version(c, workspace)? else { return Ok(None) };
    let (created_at, k, assign_threshold, segments): (i64, i64, f32, i64) = c.query_row(
        "SELECT created_at, k, assign_threshold, segments FROM theme_models WHERE workspace = ?1 AND version = ?2",
        params![workspace, version],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut stmt = c.prepare_cached(&format!("{THEME_COLUMNS} WHERE workspace = ?1 AND version = ?2 ORDER BY size DESC, theme_id"))?;
    let themes = stmt.query_map(params![workspace, version], theme_row)?.map(|t| t?).collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(ThemeModel {
        version,
        created_at: rfc3339(created_at),
        k: k as usize,
        assign_threshold,
        segments: segments as u64,
        themes,
    }))
}

const THEME_COLUMNS: &str = "SELECT theme_id, label, name, keywords, quotes, centroid, size, pinned FROM themes";

fn load_theme(c: &Connection, workspace: &str, version: i64, theme_id: i64) -> StoreResult<Option<Theme>> {
    let mut stmt = c.prepare_cached(&format!("{THEME_COLUMNS} WHERE workspace = ?1 AND version = ?2 AND theme_id = ?3"))?;
    stmt.query_row(params![workspace, version, theme_id], theme_row).optional()?.transpose()
}

fn theme_row(r: &rusqlite::Row) -> rusqlite::Result<StoreResult<Theme>> {
    let (keywords, quotes, centroid): (String, String, Vec<u8>) = (r.get(3)?, r.get(4)?, r.get(5)?);
    Ok(stored_theme(r.get(0)?, r.get(1)?, r.get(2)?, &keywords, &quotes, &centroid, r.get(6)?, r.get(7)?))
}

impl Store for SqliteStore {
    fn response_hash(&self, workspace: &str, response_id: &str) -> StoreResult<Option<String>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT content_hash FROM responses WHERE workspace = ?1 AND response_id = ?2",
                params![workspace, response_id],
                |r| r.get(0),
            )
            .optional()?)
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
            let existing: Option<(i64, String)> = tx
                .query_row(
                    "SELECT id, content_hash FROM responses WHERE workspace = ?1 AND response_id = ?2",
                    params![workspace, record.response_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let now = now();
            let (id, outcome) = match existing {
                Some((_, hash)) if hash == content_hash => return Ok(WriteOutcome::Unchanged),
                Some((id, _)) => {
                    tx.execute(
                        "UPDATE responses SET account_id = ?2, survey = ?3, scale_min = ?4, scale_max = ?5, score = ?6,
                         verbatim = ?7, submitted_at = ?8, attributes = ?9, content_hash = ?10, truncated = ?11,
                         updated_at = ?12 WHERE id = ?1",
                        params![
                            id,
                            record.account_id,
                            record.survey.as_str(),
                            record.scale.min,
                            record.scale.max,
                            record.score,
                            record.verbatim,
                            record.submitted_at,
                            attributes_json(&record.attributes),
                            content_hash,
                            truncated,
                            now
                        ],
                    )?;
                    tx.execute("DELETE FROM segments WHERE response = ?1", [id])?;
                    (id, WriteOutcome::Updated)
                }
                None => {
                    tx.execute(
                        "INSERT INTO responses (workspace, response_id, account_id, survey, scale_min, scale_max, score,
                         verbatim, submitted_at, attributes, content_hash, truncated, received_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
                        params![
                            workspace,
                            record.response_id,
                            record.account_id,
                            record.survey.as_str(),
                            record.scale.min,
                            record.scale.max,
                            record.score,
                            record.verbatim,
                            record.submitted_at,
                            attributes_json(&record.attributes),
                            content_hash,
                            truncated,
                            now
                        ],
                    )?;
                    (tx.last_insert_rowid(), WriteOutcome::Inserted)
                }
            };
            let mut insert = tx.prepare_cached(
                "INSERT INTO segments (response, idx, text, start_byte, end_byte, tokens, embedding, sentiment_label,
                 sentiment_score, theme_id, theme_similarity, theme_version, sentiment_negative, sentiment_neutral,
                 sentiment_positive)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for s in segments {
                insert.execute(params![
                    id,
                    s.index,
                    s.text,
                    s.start,
                    s.end,
                    s.tokens,
                    embedding_to_blob(&s.embedding),
                    s.sentiment.map(|x| x.label().as_str()),
                    s.sentiment.map(|x| x.score()),
                    s.theme_id,
                    s.theme_similarity,
                    s.theme_version,
                    s.sentiment.map(|x| x.probabilities[0]),
                    s.sentiment.map(|x| x.probabilities[1]),
                    s.sentiment.map(|x| x.probabilities[2])
                ])?;
            }
            Ok(outcome)
        })
    }

    fn get_response(&self, workspace: &str, response_id: &str) -> StoreResult<Option<StoredResponse>> {
        self.with_conn(|c| {
            let row = c
                .query_row(
                    "SELECT id, account_id, survey, scale_min, scale_max, score, verbatim, submitted_at, attributes,
                     content_hash, truncated, received_at, updated_at FROM responses WHERE workspace = ?1 AND response_id = ?2",
                    params![workspace, response_id],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            (r.get::<_, i32>(3)?, r.get::<_, i32>(4)?),
                            r.get::<_, f64>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, i64>(7)?,
                            r.get::<_, String>(8)?,
                            r.get::<_, String>(9)?,
                            r.get::<_, bool>(10)?,
                            (r.get::<_, i64>(11)?, r.get::<_, i64>(12)?),
                        ))
                    },
                )
                .optional()?;
            let Some((id, account_id, survey, (min, max), score, verbatim, submitted_at, attrs, hash, truncated, (received_at, updated_at))) = row
            else {
                return Ok(None);
            };
            let survey = parse_survey(&survey)?;
            let mut stmt = c.prepare_cached(
                "SELECT idx, text, start_byte, end_byte, tokens, embedding, sentiment_negative, sentiment_neutral,
                 sentiment_positive, theme_id, theme_similarity, theme_version FROM segments WHERE response = ?1 ORDER BY idx",
            )?;
            let segments = stmt
                .query_map([id], |r| {
                    Ok((
                        SegmentRecord {
                            index: r.get(0)?,
                            text: r.get(1)?,
                            start: r.get(2)?,
                            end: r.get(3)?,
                            tokens: r.get(4)?,
                            embedding: Vec::new(),
                            sentiment: stored_sentiment(r.get(6)?, r.get(7)?, r.get(8)?),
                            theme_id: r.get(9)?,
                            theme_similarity: r.get(10)?,
                            theme_version: r.get(11)?,
                        },
                        r.get::<_, Vec<u8>>(5)?,
                    ))
                })?
                .map(|row| {
                    let (mut segment, blob) = row?;
                    segment.embedding = blob_to_embedding(&blob)?;
                    Ok(segment)
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(StoredResponse {
                record: ResponseRecord {
                    response_id: response_id.to_string(),
                    account_id,
                    survey,
                    scale: Scale { min, max },
                    score,
                    verbatim,
                    submitted_at,
                    attributes: parse_attributes(&attrs)?,
                },
                content_hash: hash,
                truncated,
                segments,
                received_at,
                updated_at,
            }))
        })
    }

    fn count_responses(&self, workspace: &str) -> StoreResult<u64> {
        self.with_conn(|c| Ok(c.query_row("SELECT COUNT(*) FROM responses WHERE workspace = ?1", [workspace], |r| r.get(0))?))
    }

    fn count_segments(&self, workspace: &str) -> StoreResult<u64> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM segments JOIN responses ON responses.id = segments.response WHERE workspace = ?1",
                [workspace],
                |r| r.get(0),
            )?)
        })
    }

    fn impact_input(&self, workspace: &str, since: i64) -> StoreResult<ImpactInput> {
        let mut input = ImpactInput { outcomes: self.list_outcomes(workspace)?, ..ImpactInput::default() };
        input.themes = self.active_theme_model(workspace)?.map(|m| m.themes).unwrap_or_default();
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT id, response_id, account_id, survey, scale_min, scale_max, score, submitted_at, attributes
                 FROM responses WHERE workspace = ?1 AND submitted_at >= ?2 ORDER BY id",
            )?;
            let mut position: HashMap<i64, usize> = HashMap::new();
            let mut rows = stmt.query(params![workspace, since])?;
            while let Some(r) = rows.next()? {
                let survey: String = r.get(3)?;
                position.insert(r.get(0)?, input.responses.len());
                input.responses.push(ResponseRecord {
                    response_id: r.get(1)?,
                    account_id: r.get(2)?,
                    survey: parse_survey(&survey)?,
                    scale: Scale { min: r.get(4)?, max: r.get(5)? },
                    score: r.get(6)?,
                    verbatim: String::new(),
                    submitted_at: r.get(7)?,
                    attributes: parse_attributes(&r.get::<_, String>(8)?)?,
                });
            }
            let mut stmt = c.prepare(
                "SELECT s.response, s.theme_id, s.text, s.sentiment_negative, s.sentiment_neutral, s.sentiment_positive, s.theme_similarity
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = ?1 AND r.submitted_at >= ?2 AND s.theme_id IS NOT NULL
                   AND s.theme_version = (SELECT active_version FROM theme_state WHERE workspace = ?1)
                 ORDER BY s.response, s.idx",
            )?;
            let mut rows = stmt.query(params![workspace, since])?;
            while let Some(r) = rows.next()? {
                let response = position[&r.get::<_, i64>(0)?];
                let sentiment = stored_sentiment(r.get(3)?, r.get(4)?, r.get(5)?);
                input.segments.push(SegmentTheme { response, theme_id: r.get(1)?, text: r.get(2)?, sentiment, similarity: r.get(6)? });
            }
            let mut stmt = c.prepare("SELECT account_id, arr, churned_at, attributes FROM accounts WHERE workspace = ?1 ORDER BY account_id")?;
            let mut rows = stmt.query([workspace])?;
            while let Some(r) = rows.next()? {
                input.accounts.push(AccountRecord {
                    account_id: r.get(0)?,
                    arr: r.get(1)?,
                    churned_at: r.get(2)?,
                    attributes: parse_attributes(&r.get::<_, String>(3)?)?,
                });
            }
            Ok(())
        })?;
        Ok(input)
    }

    fn single_segment_verbatims(&self, workspace: &str) -> StoreResult<Vec<ScoredText>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT r.survey, r.scale_min, r.scale_max, r.score, MIN(s.text) FROM responses r
                 JOIN segments s ON s.response = r.id WHERE r.workspace = ?1
                 GROUP BY r.id HAVING COUNT(*) = 1 ORDER BY r.id",
            )?;
            let rows = stmt
                .query_map([workspace], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .map(|row| {
                    let (survey, min, max, score, text) = row?;
                    let survey = parse_survey(&survey)?;
                    Ok(ScoredText { text, survey, scale: Scale { min, max }, score })
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn upsert_accounts(&self, workspace: &str, accounts: &[AccountRecord]) -> StoreResult<Vec<WriteOutcome>> {
        self.with_tx(|tx| {
            let now = now();
            let mut upsert = tx.prepare_cached(
                "INSERT INTO accounts (workspace, account_id, arr, churned_at, attributes, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (workspace, account_id) DO UPDATE SET arr = excluded.arr,
                 churned_at = COALESCE(excluded.churned_at, accounts.churned_at),
                 attributes = excluded.attributes, updated_at = excluded.updated_at",
            )?;
            let mut outcomes = Vec::with_capacity(accounts.len());
            for a in accounts {
                let outcome = account_write(read_account(tx, workspace, &a.account_id)?.as_ref(), a);
                if outcome != WriteOutcome::Unchanged {
                    upsert.execute(params![workspace, a.account_id, a.arr, a.churned_at, attributes_json(&a.attributes), now])?;
                }
                outcomes.push(outcome);
            }
            Ok(outcomes)
        })
    }

    fn get_account(&self, workspace: &str, account_id: &str) -> StoreResult<Option<AccountRecord>> {
        self.with_conn(|c| read_account(c, workspace, account_id))
    }

    fn record_outcomes(&self, workspace: &str, outcomes: &[OutcomeRecord]) -> StoreResult<Vec<WriteOutcome>> {
        self.with_tx(|tx| {
            let now = now();
            let mut insert = tx.prepare_cached(
                "INSERT INTO outcomes (workspace, account_id, kind, occurred_at, arr_change, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (workspace, account_id, kind, occurred_at) DO UPDATE SET arr_change = excluded.arr_change
                 WHERE arr_change IS NOT excluded.arr_change",
            )?;
            let mut mark_churned = tx.prepare_cached(
                "UPDATE accounts SET churned_at = MIN(COALESCE(churned_at, ?3), ?3), updated_at = ?4
                 WHERE workspace = ?1 AND account_id = ?2",
            )?;
            let mut written = Vec::with_capacity(outcomes.len());
            for o in outcomes {
                let existed = read_outcome(tx, workspace, &o.account_id, o.kind, o.occurred_at)?.is_some();
                let changed = insert.execute(params![workspace, o.account_id, o.kind.as_str(), o.occurred_at, o.arr_change, now])?;
                if o.kind == OutcomeKind::Churn {
                    mark_churned.execute(params![workspace, o.account_id, o.occurred_at, now])?;
                }
                written.push(match (existed, changed) {
                    (false, _) => WriteOutcome::Inserted,
                    (true, 0) => WriteOutcome::Unchanged,
                    (true, _) => WriteOutcome::Updated,
                });
            }
            Ok(written)
        })
    }

    fn get_outcome(&self, workspace: &str, account_id: &str, kind: OutcomeKind, occurred_at: i64) -> StoreResult<Option<OutcomeRecord>> {
        self.with_conn(|c| read_outcome(c, workspace, account_id, kind, occurred_at))
    }

    fn list_outcomes(&self, workspace: &str) -> StoreResult<Vec<OutcomeRecord>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT account_id, kind, occurred_at, arr_change FROM outcomes WHERE workspace = ?1
                 ORDER BY occurred_at, account_id, kind",
            )?;
            let rows = stmt
                .query_map([workspace], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<f64>>(3)?))
                })?
                .map(|row| {
                    let (account_id, kind, occurred_at, arr_change) = row?;
                    Ok(OutcomeRecord { account_id, kind: parse_outcome_kind(&kind)?, occurred_at, arr_change })
                })
                .collect();
            rows
        })
    }

    fn theme_segments(&self, workspace: &str, since: Option<i64>) -> StoreResult<Vec<ThemeSegment>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT r.response_id, s.idx, s.text, s.embedding,
                 CASE WHEN s.theme_version = (SELECT active_version FROM theme_state WHERE workspace = ?1) THEN s.theme_id END
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = ?1 AND r.submitted_at >= ?2 ORDER BY r.response_id, s.idx",
            )?;
            let rows = stmt.query_map(params![workspace, since.unwrap_or(i64::MIN)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, String>(2)?, r.get::<_, Vec<u8>>(3)?, r.get(4)?))
            })?;
            rows.map(|row| {
                let (response_id, index, text, blob, theme_id) = row?;
                Ok(ThemeSegment { response_id, index, text, embedding: blob_to_embedding(&blob)?, theme_id })
            })
            .collect()
        })
    }

    fn theme_history(&self, workspace: &str) -> StoreResult<History> {
        self.with_conn(|c| {
            let next_id: Option<i64> =
                c.query_row("SELECT next_theme_id FROM theme_state WHERE workspace = ?1", [workspace], |r| r.get(0)).optional()?;
            let mut stmt = c.prepare("SELECT centroid, target_id FROM theme_merges WHERE workspace = ?1 ORDER BY source_id")?;
            let merged = stmt
                .query_map([workspace], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?
                .map(|row| {
                    let (blob, target) = row?;
                    Ok((blob_to_embedding(&blob)?, target))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(History { active: load_active_model(c, workspace)?, merged, next_id: next_id.unwrap_or(1), prior: Vec::new() })
        })
    }

    fn active_theme_stamp(&self, workspace: &str) -> StoreResult<Option<ThemeStamp>> {
        self.with_conn(|c| {
            Ok(c.query_row("SELECT active_version, revision FROM theme_state WHERE workspace = ?1", [workspace], |r| {
                Ok(ThemeStamp { version: r.get(0)?, revision: r.get(1)? })
            })
            .optional()?)
        })
    }

    fn active_theme_model(&self, workspace: &str) -> StoreResult<Option<ThemeModel>> {
        self.with_conn(|c| load_active_model(c, workspace))
    }

    fn activate_theme_model(&self, workspace: &str, new: &NewThemeModel) -> StoreResult<i64> {
        self.with_tx(|tx| {
            let version: i64 =
                tx.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM theme_models WHERE workspace = ?1", [workspace], |r| r.get(0))?;
            let m = new.model;
            tx.execute(
                "INSERT INTO theme_models (workspace, version, created_at, k, assign_threshold, segments, params)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![workspace, version, now(), m.k as i64, m.assign_threshold, m.segments as i64, new.params],
            )?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO themes (workspace, version, theme_id, label, name, keywords, quotes, centroid, size, pinned)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?;
                for t in &m.themes {
                    insert.execute(params![
                        workspace,
                        version,
                        t.id,
                        t.label,
                        t.name,
                        json(&t.keywords),
                        json(&t.quotes),
                        embedding_to_blob(&t.centroid),
                        t.size as i64,
                        t.pinned
                    ])?;
                }
            }
            let mut update = tx.prepare_cached(
                "UPDATE segments SET theme_id = ?4, theme_similarity = ?5, theme_version = ?6
                 WHERE response = (SELECT id FROM responses WHERE workspace = ?1 AND response_id = ?2) AND idx = ?3",
            )?;
            let half = new.assignments.len() / 2;
            for (i, (response_id, index, theme, similarity)) in new.assignments.iter().enumerate() {
                if i == half {
                    crate::fault::point("recluster.activate");
                }
                update.execute(params![workspace, response_id, index, theme, similarity, version])?;
            }
            tx.execute(
                "INSERT INTO theme_state (workspace, active_version, next_theme_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (workspace) DO UPDATE SET active_version = excluded.active_version,
                 next_theme_id = MAX(theme_state.next_theme_id, excluded.next_theme_id)",
                params![workspace, version, new.next_theme_id],
            )?;
            Ok(version)
        })
    }

    fn rename_theme(&self, workspace: &str, theme_id: i64, name: Option<&str>) -> StoreResult<Option<Theme>> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        self.set_active_theme_column(workspace, theme_id, "name", name)
    }

    fn pin_theme(&self, workspace: &str, theme_id: i64, pinned: bool) -> StoreResult<Option<Theme>> {
        self.set_active_theme_column(workspace, theme_id, "pinned", pinned)
    }

    fn merge_themes(&self, workspace: &str, source: i64, target: i64) -> StoreResult<Option<Theme>> {
        self.with_tx(|tx| {
            let Some(version) = active_version(tx, workspace)? else { return Ok(None) };
            let (Some(from), Some(into)) = (load_theme(tx, workspace, version, source)?, load_theme(tx, workspace, version, target)?) else {
                return Ok(None);
            };
            let centroid = merged_centroid(&into, &from);
            tx.execute(
                "UPDATE segments SET theme_id = ?4 WHERE theme_id = ?3 AND theme_version = ?2
                 AND response IN (SELECT id FROM responses WHERE workspace = ?1)",
                params![workspace, version, source, target],
            )?;
            tx.execute(
                "UPDATE themes SET centroid = ?4, size = size + ?5 WHERE workspace = ?1 AND version = ?2 AND theme_id = ?3",
                params![workspace, version, target, embedding_to_blob(&centroid), from.size as i64],
            )?;
            tx.execute("DELETE FROM themes WHERE workspace = ?1 AND version = ?2 AND theme_id = ?3", params![workspace, version, source])?;
            tx.execute(
                "UPDATE theme_merges SET target_id = ?3 WHERE workspace = ?1 AND target_id = ?2",
                params![workspace, source, target],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO theme_merges (workspace, source_id, target_id, centroid, merged_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![workspace, source, target, embedding_to_blob(&from.centroid), now()],
            )?;
            new_revision(tx, workspace)?;
            load_theme(tx, workspace, version, target)
        })
    }

    fn theme_assignments(&self, workspace: &str) -> StoreResult<Vec<AssignmentRow>> {
        self.with_conn(|c| {
            let version = active_version(c, workspace)?.unwrap_or(-1);
            let mut stmt = c.prepare(
                "SELECT r.response_id, s.idx, s.text, t.theme_id, COALESCE(t.name, t.label)
                 FROM segments s JOIN responses r ON r.id = s.response
                 LEFT JOIN themes t ON t.workspace = r.workspace AND t.version = ?2 AND t.theme_id = s.theme_id
                      AND s.theme_version = ?2
                 WHERE r.workspace = ?1 ORDER BY r.submitted_at, r.id, s.idx",
            )?;
            let rows = stmt.query_map(params![workspace, version], |r| {
                Ok(AssignmentRow {
                    response_id: r.get(0)?,
                    segment_index: r.get(1)?,
                    segment_text: r.get(2)?,
                    theme_id: r.get(3)?,
                    theme_label: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn theme_segment_page(&self, workspace: &str, q: &ThemeSegmentQuery) -> StoreResult<ThemeSegmentPage> {
        self.with_conn(|c| {
            let Some(version) = active_version(c, workspace)? else { return Ok(ThemeSegmentPage::default()) };
            let mut stmt = c.prepare_cached(
                "SELECT r.response_id, r.account_id, r.survey, r.scale_min, r.scale_max, r.score, r.verbatim, r.submitted_at,
                        r.attributes, s.idx, s.text, s.sentiment_negative, s.sentiment_neutral, s.sentiment_positive,
                        s.theme_similarity
                 FROM segments s JOIN responses r ON r.id = s.response
                 WHERE r.workspace = ?1 AND s.theme_version = ?2 AND s.theme_id = ?3
                   AND r.submitted_at >= ?4 AND r.submitted_at < ?5 AND (?6 IS NULL OR s.sentiment_label = ?6)
                   AND (?7 IS NULL OR r.submitted_at < ?7
                        OR (r.submitted_at = ?7 AND (r.response_id < ?8 OR (r.response_id = ?8 AND s.idx > ?9))))
                 ORDER BY r.submitted_at DESC, r.response_id DESC, s.idx
                 LIMIT ?10",
            )?;
            let after = q.after.as_ref();
            let rows = stmt.query_map(
                params![
                    workspace,
                    version,
                    q.theme_id,
                    q.since.unwrap_or(i64::MIN),
                    q.until.unwrap_or(i64::MAX),
                    q.sentiment.map(|l| l.as_str()),
                    after.map(|a| a.submitted_at),
                    after.map(|a| a.response_id.as_str()),
                    after.map(|a| a.index),
                    q.limit as i64 + 1
                ],
                |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i32>(3)?, r.get::<_, i32>(4)?),
                        (r.get::<_, f64>(5)?, r.get::<_, String>(6)?, r.get::<_, i64>(7)?, r.get::<_, String>(8)?),
                        (r.get::<_, u32>(9)?, r.get::<_, String>(10)?, stored_sentiment(r.get(11)?, r.get(12)?, r.get(13)?), r.get::<_, Option<f32>>(14)?),
                    ))
                },
            )?;
            let mut segments = Vec::new();
            for row in rows {
                let ((response_id, account_id, survey, min, max), (score, verbatim, submitted_at, attributes), (index, text, sentiment, similarity)) = row?;
                let response = ResponseRecord {
                    response_id,
                    account_id,
                    survey: parse_survey(&survey)?,
                    scale: Scale { min, max },
                    score,
                    verbatim,
                    submitted_at,
                    attributes: parse_attributes(&attributes)?,
                };
                segments.push(ThemeSegmentHit { response, index, text, sentiment, similarity: similarity.unwrap_or(0.0) });
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
                    for id in ids {
                        erase_where(tx, workspace, "workspace = ?1 AND response_id = ?2", id, &mut texts, &mut summary)?;
                    }
                }
                Erasure::Account(account) => {
                    erase_where(tx, workspace, "workspace = ?1 AND account_id = ?2", account, &mut texts, &mut summary)?;
                    summary.outcomes = tx.execute("DELETE FROM outcomes WHERE workspace = ?1 AND account_id = ?2", params![workspace, account])? as u64;
                    summary.accounts = tx.execute("DELETE FROM accounts WHERE workspace = ?1 AND account_id = ?2", params![workspace, account])? as u64;
                }
                Erasure::SubmittedBefore(t) => erase_where(tx, workspace, "workspace = ?1 AND submitted_at < ?2", t, &mut texts, &mut summary)?,
            }
            if !texts.is_empty() {
                let themes: Vec<(i64, i64, String)> = tx
                    .prepare("SELECT version, theme_id, quotes FROM themes WHERE workspace = ?1")?
                    .query_map([workspace], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                for (version, theme_id, quotes) in themes {
                    if let Some((kept, removed)) = scrub_quotes(&quotes, &texts)? {
                        tx.execute(
                            "UPDATE themes SET quotes = ?1 WHERE workspace = ?2 AND version = ?3 AND theme_id = ?4",
                            params![kept, workspace, version, theme_id],
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
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT DISTINCT workspace FROM responses ORDER BY workspace")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn claim_recluster(&self, workspace: &str, now: i64, due_before: i64, retry_before: i64) -> StoreResult<bool> {
        self.with_tx(|tx| {
            let (model_at, claimed_at) = tx.query_row(
                "SELECT (SELECT m.created_at FROM theme_state s JOIN theme_models m ON m.workspace = s.workspace AND m.version = s.active_version
                         WHERE s.workspace = ?1),
                        (SELECT claimed_at FROM recluster_claims WHERE workspace = ?1)",
                [workspace],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let due = recluster_due(model_at, claimed_at, due_before, retry_before);
            if due {
                tx.execute(
                    "INSERT INTO recluster_claims (workspace, claimed_at) VALUES (?1, ?2)
                     ON CONFLICT (workspace) DO UPDATE SET claimed_at = excluded.claimed_at",
                    params![workspace, now],
                )?;
            }
            Ok(due)
        })
    }

    fn insert_api_token(&self, workspace: &str, name: &str, scopes: &[Scope], token_hash: &str, expires_at: Option<i64>) -> StoreResult<Option<ApiToken>> {
        let created_at = now();
        self.with_tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO api_tokens (workspace, name, scopes, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                params![workspace, name, scopes_column(scopes), token_hash, created_at, expires_at],
            )?;
            Ok((inserted == 1).then(|| new_api_token(workspace, name, scopes, created_at, expires_at)))
        })
    }

    fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        self.with_conn(|c| {
            c.query_row(
                "SELECT workspace, name, scopes, created_at, revoked_at, expires_at, last_used_at FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
                [token_hash],
                api_token_row,
            )
            .optional()?
            .map(|(token, scopes)| Ok(ApiToken { scopes: parse_scopes(&scopes)?, ..token }))
            .transpose()
        })
    }

    fn has_api_tokens(&self) -> StoreResult<bool> {
        self.with_conn(|c| Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM api_tokens)", [], |r| r.get(0))?))
    }

    fn touch_api_token(&self, token_hash: &str, at: i64) -> StoreResult<()> {
        self.with_tx(|tx| {
            tx.execute("UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)", params![token_hash, at])?;
            Ok(())
        })
    }

    fn list_api_tokens(&self, workspace: &str) -> StoreResult<Vec<ApiToken>> {
        self.with_conn(|c| {
            let mut stmt = c.prepare("SELECT workspace, name, scopes, created_at, revoked_at, expires_at, last_used_at FROM api_tokens WHERE workspace = ?1 ORDER BY id")?;
            let rows = stmt.query_map([workspace], api_token_row)?;
            rows.map(|row| {
                let (token, scopes) = row?;
                Ok(ApiToken { scopes: parse_scopes(&scopes)?, ..token })
            })
            .collect()
        })
    }

    fn revoke_api_token(&self, workspace: &str, name: &str) -> StoreResult<bool> {
        self.with_tx(|tx| {
            let n = tx.execute(
                "UPDATE api_tokens SET revoked_at = ?1 WHERE workspace = ?2 AND name = ?3 AND revoked_at IS NULL",
                params![now(), workspace, name],
            )?;
            Ok(n > 0)
        })
    }
}

/// Deletes the workspace's responses matching `filter` (binding ?1 = workspace, ?2 = `key`); their
/// segments go with them (foreign key cascade), their texts are added to `texts`.
fn erase_where(
    tx: &Transaction,
    workspace: &str,
    filter: &str,
    key: &dyn rusqlite::ToSql,
    texts: &mut std::collections::HashSet<String>,
    summary: &mut ErasureSummary,
) -> StoreResult<()> {
    let mut stmt = tx.prepare(&format!("SELECT segments.text FROM segments JOIN responses ON responses.id = segments.response WHERE {filter}"))?;
    for text in stmt.query_map(params![workspace, key], |r| r.get::<_, String>(0))? {
        texts.insert(text?);
        summary.segments += 1;
    }
    let mut stmt = tx.prepare(&format!("SELECT DISTINCT {SUBMITTED_DAY_SQL} FROM responses WHERE {filter}"))?;
    let days = stmt.query_map(params![workspace, key], |r| r.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    summary.add_submitted_days(days);
    summary.responses += tx.execute(&format!("DELETE FROM responses WHERE {filter}"), params![workspace, key])? as u64;
    Ok(())
}

/// A token row with its scopes still as stored (parsed by the caller: rusqlite's row closure
/// cannot return a store error).
fn api_token_row(r: &rusqlite::Row) -> rusqlite::Result<(ApiToken, String)> {
    let token = ApiToken {
        workspace: r.get(0)?,
        name: r.get(1)?,
        scopes: Vec::new(),
        created_at: r.get(3)?,
        revoked_at: r.get(4)?,
        expires_at: r.get(5)?,
        last_used_at: r.get(6)?,
    };
    Ok((token, r.get(2)?))
}

/// One account (`get_account`, and each row of `upsert_accounts` inside its transaction).
fn read_account(c: &Connection, workspace: &str, account_id: &str) -> StoreResult<Option<AccountRecord>> {
    let row: Option<(f64, Option<i64>, String)> = c
        .prepare_cached("SELECT arr, churned_at, attributes FROM accounts WHERE workspace = ?1 AND account_id = ?2")?
        .query_row(params![workspace, account_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(arr, churned_at, attrs)| Ok(AccountRecord { account_id: account_id.to_string(), arr, churned_at, attributes: parse_attributes(&attrs)? }))
        .transpose()
}

/// One event by its key (`get_outcome`, and each row of `record_outcomes` inside its transaction).
fn read_outcome(c: &Connection, workspace: &str, account_id: &str, kind: OutcomeKind, occurred_at: i64) -> StoreResult<Option<OutcomeRecord>> {
    let arr_change: Option<Option<f64>> = c
        .prepare_cached("SELECT arr_change FROM outcomes WHERE workspace = ?1 AND account_id = ?2 AND kind = ?3 AND occurred_at = ?4")?
        .query_row(params![workspace, account_id, kind.as_str(), occurred_at], |r| r.get(0))
        .optional()?;
    Ok(arr_change.map(|arr_change| OutcomeRecord { account_id: account_id.to_string(), kind, occurred_at, arr_change }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::{response, segment};

    fn open() -> Option<(tempfile::TempDir, SqliteStore)> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("v.db")).unwrap();
        Some((dir, store))
    }

    crate::store::contract::tests!(open);

    #[test]
    fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        SqliteStore::open(&path).unwrap().upsert_response("w", &response("r1", "x"), "h", false, &[segment(0, "x")]).unwrap();
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.get_response("w", "r1").unwrap().unwrap().segments.len(), 1);
    }
}
