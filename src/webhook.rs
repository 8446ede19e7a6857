//! Alerts pushed to where the CX team already looks: after each scheduled recluster of a
//! workspace, the alerts of its last seven days are POSTed as JSON to the `--alerts-webhook` URL.
//! The body is a Slack incoming-webhook message (`text`, which Slack and the Slack-compatible
//! endpoints of Mattermost, Rocket.Chat and Discord show) with the alerts as structured fields
//! beside it for other tools. A week without alerts sends nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::error::Error;
use crate::impact::alerts::Alert;
use crate::impact::report::Period;
use crate::report::{json as report_json, period_label};

/// Per attempt, connection and answer together.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per delivery (a 5xx, a 429 or a network error is tried again; another 4xx is not).
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_secs(2);

/// Where alerts go. The URL usually carries a secret (Slack's does), so it is never logged.
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
}

impl Webhook {
    /// Checks the URL (http or https, a host) without contacting it.
    pub fn new(url: &str, field: &str) -> Result<Webhook, Error> {
        let url = url.trim();
        let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
        if host.is_none_or(str::is_empty) {
            return Err(Error::invalid(field, "expected an http:// or https:// URL with a host"));
        }
        let agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build().into();
        Ok(Webhook { url: url.to_string(), agent })
    }

    /// POSTs the week's alerts of `workspace`; `Ok(false)` when there were none to send.
    pub fn deliver(&self, workspace: &str, week: Period, alerts: &[Alert]) -> Result<bool, String> {
        if alerts.is_empty() {
            return Ok(false);
        }
        let body = payload(workspace, week, alerts);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(BACKOFF * attempt);
            }
            match self.agent.post(&self.url).send_json(&body) {
                Ok(r) if r.status().is_success() => return Ok(true),
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => return Err(format!("the webhook refused the alerts: HTTP {}", r.status())),
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("the webhook did not take the alerts after {ATTEMPTS} tries: {last}"))
    }
}

/// The JSON body: `text` (one line per alert), `workspace`, `period` {`from`, `to`}, `alerts` (as in
/// the JSON report).
pub fn payload(workspace: &str, week: Period, alerts: &[Alert]) -> Value {
    let plural = if alerts.len() == 1 { "" } else { "s" };
    let mut text = format!("Verbatim · {workspace} · {}: {} alert{plural}", period_label(week), alerts.len());
    for a in alerts {
        text.push_str(&format!("\n• {} (theme {}): {}", a.label, a.theme_id, a.message));
    }
    json!({ "text": text, "workspace": workspace, "period": report_json::period(week), "alerts": alerts.iter().map(report_json::alert).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::alerts::AlertKind;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        for good in ["https://hooks.slack.com/services/T0/B0/x", "http://127.0.0.1:9000/hook", " http://alerts.internal "] {
            assert!(Webhook::new(good, "--alerts-webhook").is_ok(), "{good}");
        }
        for bad in ["", "hooks.slack.com/x", "ftp://host/x", "https://", "http:///path"] {
            let e = Webhook::new(bad, "--alerts-webhook").err().unwrap().to_string();
            assert!(e.starts_with("--alerts-webhook:"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_payload_is_a_chat_message_with_the_alerts_beside_it() {
        let spike = Alert { theme_id: 7, label: "sync failures".into(), kind: AlertKind::VolumeSpike { mentions: 40, mean: 12.0, sd: 3.0 }, message: "40 mentions".into() };
        let week = Period { from: 1_764_460_800, to: 1_765_065_600 };
        let body = payload("acme", week, std::slice::from_ref(&spike));
        assert_eq!(body["text"], "Verbatim · acme · 2025-11-30 – 2025-12-06: 1 alert\n• sync failures (theme 7): 40 mentions");
        assert_eq!(body["alerts"][0]["kind"], "volume_spike");
        assert_eq!(body["alerts"][0]["mentions"], 40);
        assert_eq!(body["period"]["to"], "2025-12-07T00:00:00Z");
    }
}
