//! Fault injection for crash tests: `VERBATIM_FAULT=<point>` makes the process abort at that
//! point, as a kill or power cut would, so tests can check that nothing half-done survives.
//! Unset (always, in production) it costs one environment lookup per point reached.

/// Aborts the process when `VERBATIM_FAULT` names `name`.
pub fn point(name: &str) {
    if std::env::var("VERBATIM_FAULT").is_ok_and(|v| v == name) {
        eprintln!("fault injected at {name}: aborting");
        std::process::abort();
    }
}
