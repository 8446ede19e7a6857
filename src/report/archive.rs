//! The report archive that `serve --report-dir` keeps: one HTML file per workspace and day,
//! `WORKSPACE-YYYY-MM-DD.html`, pruned to the newest few per workspace (`--report-keep`) and
//! once responses its period holds have been erased, by a retention policy or on request.
//!
//! Only files named exactly so are ever deleted; anything else in the directory is left alone.

use std::path::{Path, PathBuf};

use crate::store::ErasureSummary;

const DAY: i64 = 86_400;

/// Where `serve --report-dir` archives reports, and what each covers.
#[derive(Debug, Clone)]
pub struct Archive {
    pub dir: PathBuf,
    /// The period each report covers (`--report-period`).
    pub period: std::time::Duration,
    /// Newest reports kept per workspace (`--report-keep`; `None`: all).
    pub keep: Option<usize>,
}

impl Archive {
    /// After an erasure in `workspace`, deletes its archived reports that may quote an erased
    /// response (see [`drop_covering`]); returns what it deleted.
    pub fn drop_erased_responses(&self, workspace: &str, erased: &ErasureSummary) -> std::io::Result<Vec<PathBuf>> {
        drop_covering(&self.dir, workspace, &erased.submitted_days, self.period.as_secs() as i64)
    }
}

/// One archived report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    pub path: PathBuf,
    pub workspace: String,
    /// Start of the report's day (UTC), Unix seconds.
    pub day: i64,
}

/// Where `workspace`'s report written at `now` goes. Flat names: a workspace name (letters,
/// digits, `-`, `_`, `.`) never leaves the directory.
pub fn path(dir: &Path, workspace: &str, now: i64) -> PathBuf {
    dir.join(format!("{workspace}-{}.html", super::day(now)))
}

/// The workspace and day of an archived report's file name, `None` for any other name.
fn parse(name: &str) -> Option<(String, i64)> {
    let stem = name.strip_suffix(".html")?;
    let split = stem.len().checked_sub(11)?;
    let (workspace, day) = (stem.get(..split)?, stem.get(split..)?.strip_prefix('-')?);
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    (!workspace.is_empty() && day.len() == 10).then(|| (workspace.to_string(), date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()))
}

/// The archived reports in `dir`, newest first (an absent directory holds none).
pub fn list(dir: &Path) -> std::io::Result<Vec<Archived>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some((workspace, day)) = entry.file_name().to_str().and_then(parse) {
            if entry.file_type()?.is_file() {
                out.push(Archived { path: entry.path(), workspace, day });
            }
        }
    }
    out.sort_by(|a, b| b.day.cmp(&a.day).then_with(|| a.workspace.cmp(&b.workspace)));
    Ok(out)
}

/// Deletes `workspace`'s archived reports beyond the newest `keep`; returns what it deleted.
pub fn keep_newest(dir: &Path, workspace: &str, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let old = list(dir)?.into_iter().filter(|a| a.workspace == workspace).skip(keep);
    remove(old)
}

/// Deletes every archived report (any workspace) whose period of `period` seconds began before
/// `erased_before`: the responses it quotes from then are erased by the same retention policy,
/// and the archive must not keep them. Returns what it deleted.
pub fn drop_erased(dir: &Path, erased_before: i64, period: i64) -> std::io::Result<Vec<PathBuf>> {
    let old = list(dir)?.into_iter().filter(|a| a.day - period < erased_before);
    remove(old)
}

/// Deletes `workspace`'s archived reports whose period of `period` seconds may hold a response
/// submitted on one of `days` (each a UTC day's start, ascending): a report of day D was cut during
/// D, so it covers at most `period` seconds before D's end. Reports quote only their period's
/// responses, so the others stay, a report between two erased days too. Returns what it deleted.
pub fn drop_covering(dir: &Path, workspace: &str, days: &[i64], period: i64) -> std::io::Result<Vec<PathBuf>> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let covers_a_day = |a: &Archived| {
        let first_after_start = days.partition_point(|&d| d + DAY <= a.day - period);
        days.get(first_after_start).is_some_and(|&d| d < a.day + DAY)
    };
    remove(list(dir)?.into_iter().filter(|a| a.workspace == workspace && covers_a_day(a)))
}

fn remove(reports: impl Iterator<Item = Archived>) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for a in reports {
        match std::fs::remove_file(&a.path) {
            Ok(()) => removed.push(a.path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(paths: &[PathBuf]) -> Vec<String> {
        let mut v: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        v.sort();
        v
    }

    fn left(dir: &Path) -> Vec<String> {
        names(&std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>())
    }

    #[test]
    fn names_parse_back_to_their_workspace_and_day() {
        let t = 1_764_000_000; // 2025-11-24T16:00:00Z
        let p = path(Path::new("/r"), "acme-eu.v2", t);
        assert_eq!(p, Path::new("/r/acme-eu.v2-2025-11-24.html"));
        let (workspace, day) = parse(p.file_name().unwrap().to_str().unwrap()).unwrap();
        assert_eq!((workspace.as_str(), day), ("acme-eu.v2", t - t % DAY));
        for other in ["notes.txt", "2025-11-24.html", "-2025-11-24.html", "acme-2025-13-01.html", "acme-2025-11-24.html.partial", "acme_2025-11-24.html", "acme-25-11-24.html"] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn keep_newest_prunes_one_workspace_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            "acme-2025-11-03.html",
            "acme-2025-11-10.html",
            "acme-2025-11-17.html",
            "acme-eu-2025-11-03.html", // another workspace whose name starts like this one
            "acme-2025-11-17.partial",
            "README.txt",
        ];
        for f in files {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("acme-2020-01-01.html")).unwrap(); // a directory is not a report
        let removed = keep_newest(dir.path(), "acme", 1).unwrap();
        assert_eq!(names(&removed), ["acme-2025-11-03.html", "acme-2025-11-10.html"]);
        assert_eq!(left(dir.path()), ["README.txt", "acme-2020-01-01.html", "acme-2025-11-17.html", "acme-2025-11-17.partial", "acme-eu-2025-11-03.html"]);
        assert!(keep_newest(dir.path(), "acme", 1).unwrap().is_empty(), "a second pass deletes nothing");
        assert!(keep_newest(&dir.path().join("absent"), "acme", 1).unwrap().is_empty());
    }

    #[test]
    fn drop_erased_deletes_reports_whose_period_began_before_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a-2025-01-29.html", "a-2025-01-30.html", "b-2025-01-28.html", "b-2025-03-01.html", "keep.html"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let jan_30 = chrono::NaiveDate::from_ymd_opt(2025, 1, 30).unwrap().and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        // 28-day reports; responses submitted before 2025-01-02 are erased: the report of
        // 2025-01-30 covers 2025-01-02 onwards and stays, the ones before it quote erased responses.
        let removed = drop_erased(dir.path(), jan_30 - 28 * DAY, 28 * DAY).unwrap();
        assert_eq!(names(&removed), ["a-2025-01-29.html", "b-2025-01-28.html"]);
        assert_eq!(left(dir.path()), ["a-2025-01-30.html", "b-2025-03-01.html", "keep.html"]);
    }

    #[test]
    fn an_erasure_deletes_the_reports_whose_period_may_hold_an_erased_response() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a-2025-01-01.html", "a-2025-01-10.html", "a-2025-02-20.html", "a-2025-02-21.html", "a-2025-03-30.html", "a-2025-05-01.html", "b-2025-01-10.html", "keep.html"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let at = |d: u32, m: u32| chrono::NaiveDate::from_ymd_opt(2025, m, d).unwrap().and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        let archive = Archive { dir: dir.path().to_path_buf(), period: std::time::Duration::from_secs(28 * DAY as u64), keep: None };
        // Responses of workspace a submitted on 2025-01-01, 01-22 and 03-30 are erased: the
        // reports of 01-01 (cut later that day) and 01-10 may quote the first, 03-30's the last.
        // 02-20's period began on 01-23, after the second day ended, and ended before the third:
        // it stays although it lies between erased days; 02-21's began on 01-24. 05-01's and
        // workspace b's stay too.
        let erased = ErasureSummary { responses: 3, submitted_days: vec![at(1, 1), at(22, 1), at(30, 3)], ..Default::default() };
        let removed = archive.drop_erased_responses("a", &erased).unwrap();
        assert_eq!(names(&removed), ["a-2025-01-01.html", "a-2025-01-10.html", "a-2025-03-30.html"]);
        assert_eq!(left(dir.path()), ["a-2025-02-20.html", "a-2025-02-21.html", "a-2025-05-01.html", "b-2025-01-10.html", "keep.html"]);
        // A response of 01-23 is in 02-20's period (its first day), not in 02-21's.
        let erased = ErasureSummary { responses: 1, submitted_days: vec![at(23, 1)], ..Default::default() };
        assert_eq!(names(&archive.drop_erased_responses("a", &erased).unwrap()), ["a-2025-02-20.html"]);
        assert!(archive.drop_erased_responses("a", &ErasureSummary::default()).unwrap().is_empty(), "nothing erased, nothing deleted");
    }

    #[test]
    fn erased_days_merge_sorted_and_distinct() {
        let mut summary = ErasureSummary::default();
        summary.add_submitted_days([3 * DAY, DAY]);
        summary.add_submitted_days([DAY, 2 * DAY]);
        assert_eq!(summary.submitted_days, [DAY, 2 * DAY, 3 * DAY]);
    }
}
