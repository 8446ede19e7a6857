//! Curating the active theme model by hand: a name, a pin, a merge. The checks and the errors live
//! here, so the RPCs (`RenameTheme`, `PinTheme`, `MergeThemes`) and `verbatim themes` refuse the
//! same things with the same words; the store does the writes (each one transaction).

use crate::error::Error;
use crate::store::Store;
use crate::themes::{reserved_label, Theme};

/// Longest human theme name.
pub const MAX_NAME_CHARS: usize = 200;

/// Gives theme `id` a name shown instead of its keyword label (`None` or "" clears it).
pub fn rename(store: &dyn Store, workspace: &str, id: i64, id_field: &str, name: Option<&str>, name_field: &str) -> Result<Theme, Error> {
    not_reserved(id, id_field, "renamed")?;
    if let Some(n) = name.filter(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(Error::invalid(name_field, format!("{} characters; at most {MAX_NAME_CHARS}", n.chars().count())));
    }
    store.rename_theme(workspace, id, name)?.ok_or_else(|| unknown_theme(id, workspace))
}

/// Pins theme `id` (kept by reclusters even when the data no longer forms it) or unpins it.
pub fn pin(store: &dyn Store, workspace: &str, id: i64, id_field: &str, pinned: bool) -> Result<Theme, Error> {
    not_reserved(id, id_field, if pinned { "pinned" } else { "unpinned" })?;
    store.pin_theme(workspace, id, pinned)?.ok_or_else(|| unknown_theme(id, workspace))
}

/// Moves every segment of `source` into `target`; later reclusters fold `source` back in.
pub fn merge(store: &dyn Store, workspace: &str, source: i64, target: i64, source_field: &str, target_field: &str) -> Result<Theme, Error> {
    if source == target {
        return Err(Error::invalid(source_field, format!("must differ from {target_field} (both are {source})")));
    }
    not_reserved(source, source_field, "merged")?;
    not_reserved(target, target_field, "merged")?;
    store.merge_themes(workspace, source, target)?.ok_or_else(|| {
        Error::NotFound(format!("theme {source} or {target} is not in the active theme model of workspace {workspace:?}"))
    })
}

/// A reserved theme (no content, not English) is rebuilt by every recluster: curating it would
/// not last, so it is refused.
fn not_reserved(id: i64, field: &str, verb: &str) -> Result<(), Error> {
    match reserved_label(id) {
        Some(label) => Err(Error::invalid(field, format!("theme {id} (\"{label}\") is reserved and cannot be {verb}"))),
        None => Ok(()),
    }
}

pub fn unknown_theme(id: i64, workspace: &str) -> Error {
    Error::NotFound(format!("theme_id {id} is not in the active theme model of workspace {workspace:?}"))
}
