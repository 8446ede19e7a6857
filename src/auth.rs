//! API tokens: who may call the gRPC API, for which workspace, to do what.
//!
//! A token is issued for one workspace with one or more scopes; the store keeps only its SHA-256,
//! so a leaked database does not leak working tokens (a token carries 256 random bits, so an
//! unsalted hash cannot be searched). A call names its token in `authorization: Bearer vbt_…`; the
//! token's workspace is the call's workspace.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{ApiToken, Store};

/// What a token may do. `admin` includes the other two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Send survey data: responses, accounts, outcomes; analyse texts; read back a response.
    Ingest,
    /// Read what Verbatim made of it: themes, reports, alerts; analyse texts; read a response.
    Read,
    /// Everything, including reclusters and theme curation (rename, merge, pin).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a call needs of its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any valid token of the workspace (analysing a text, reading back one response).
    AnyScope,
    Scope(Scope),
}

impl Need {
    fn met_by(self, scopes: &[Scope]) -> bool {
        scopes.contains(&Scope::Admin)
            || match self {
                Need::AnyScope => !scopes.is_empty(),
                Need::Scope(s) => scopes.contains(&s),
            }
    }
}

/// When the server asks for a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Once a token has been issued (even if every one is revoked or expired since), every call
    /// needs one; until then calls are open
    /// (and `verbatim serve` refuses to listen beyond loopback without `--auth off`).
    #[default]
    Auto,
    /// Every call needs a token, even while the store holds none.
    Required,
    /// No call needs a token (e.g. behind a proxy that authenticates).
    Off,
}

impl std::str::FromStr for AuthMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "required" => Ok(Self::Required),
            "off" => Ok(Self::Off),
            other => Err(format!("unknown auth mode {other:?}; use auto, required or off")),
        }
    }
}

/// How stale a token's `last_used_at` may get, in seconds: one write per token per minute at most,
/// not one per call.
pub const LAST_USED_RESOLUTION: i64 = 60;

/// The prefix that makes a Verbatim token recognisable (in logs, in secret scanners).
pub const TOKEN_PREFIX: &str = "vbt_";

/// A freshly issued token: the secret is shown once and never stored.
pub struct IssuedToken {
    pub secret: String,
    pub token: ApiToken,
}

/// Never prints the secret (debug output ends up in logs).
impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("secret", &format_args!("{TOKEN_PREFIX}***")).field("token", &self.token).finish()
    }
}

/// The credentials of an `Authorization` value of the Bearer scheme (`Bearer <token>`; the scheme
/// in any casing, RFC 7235), trimmed; `None` for another scheme or no scheme. Shared by the gRPC
/// tokens and the metrics endpoint.
pub fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// The stored form of a secret: hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a token name: what `tokens revoke` and the logs call it.
pub fn validate_token_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("name", format!("token name {name:?} must be 1–64 characters of A–Z, a–z, 0–9, '-', '_' or '.'")))
    }
}

/// Issues a token for `workspace` with `scopes` (at least one), refused from `expires_at`
/// (seconds since the epoch) on if given; fails if an active token of the workspace already has
/// this name.
pub fn issue(store: &dyn Store, workspace: &str, name: &str, scopes: &[Scope], expires_at: Option<i64>) -> Result<IssuedToken> {
    validate_token_name(name)?;
    if scopes.is_empty() {
        return Err(Error::invalid("scope", "a token needs at least one scope: ingest, read or admin"));
    }
    if expires_at.is_some_and(|t| t <= chrono::Utc::now().timestamp()) {
        return Err(Error::invalid("expires", "a token's expiry must be in the future"));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no random source for a token: {e}")))?;
    let secret = format!("{TOKEN_PREFIX}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    match store.insert_api_token(workspace, name, &scopes, &hash_secret(&secret), expires_at)? {
        Some(token) => Ok(IssuedToken { secret, token }),
        None => Err(Error::invalid(
            "name",
            format!("workspace {workspace:?} already has an active token named {name:?}; revoke it first or choose another name"),
        )),
    }
}

/// Decides a call: returns the workspace it runs in, or why it may not run.
///
/// `presented` is the `authorization` header's value, `requested` the `x-verbatim-workspace`
/// header's (already validated), `default_workspace` the server's.
pub fn authorize(
    store: &dyn Store,
    mode: AuthMode,
    presented: Option<&str>,
    requested: Option<&str>,
    default_workspace: &str,
    need: Need,
) -> Result<String, Denied> {
    let open = || requested.unwrap_or(default_workspace).to_string();
    if mode == AuthMode::Off {
        return Ok(open());
    }
    let Some(presented) = presented else {
        if mode == AuthMode::Auto && !store.has_api_tokens().map_err(Denied::Store)? {
            return Ok(open());
        }
        return Err(Denied::Unauthenticated(
            "authorization: this server needs an API token (`authorization: Bearer vbt_…`); \
             an operator creates one with `verbatim tokens create --workspace W --name N --scope ingest`"
                .into(),
        ));
    };
    // A bare token is accepted too (some clients cannot set a scheme).
    let secret = bearer_credentials(presented).unwrap_or(presented.trim());
    if !secret.starts_with(TOKEN_PREFIX) {
        return Err(Denied::Unauthenticated(format!(
            "authorization: expected `Bearer {TOKEN_PREFIX}…`, got a value that is not a Verbatim token"
        )));
    }
    let hash = hash_secret(secret);
    let Some(token) = store.api_token_by_hash(&hash).map_err(Denied::Store)? else {
        return Err(Denied::Unauthenticated("authorization: unknown or revoked API token".into()));
    };
    let now = chrono::Utc::now().timestamp();
    if let Some(expired) = token.expires_at.filter(|&t| t <= now) {
        return Err(Denied::Unauthenticated(format!(
            "authorization: API token {:?} of workspace {:?} expired at {}; an operator issues a new one with `verbatim tokens create`",
            token.name,
            token.workspace,
            crate::report::timestamp(expired)
        )));
    }
    if token.last_used_at.is_none_or(|t| t < now - LAST_USED_RESOLUTION) {
        // A record for operators, not a condition of the call: a failure is logged, not returned.
        if let Err(e) = store.touch_api_token(&hash, now) {
            tracing::warn!(token = %token.name, error = %e, "could not record the token's last use");
        }
    }
    if let Some(requested) = requested.filter(|w| *w != token.workspace) {
        return Err(Denied::PermissionDenied(format!(
            "x-verbatim-workspace: token {:?} is for workspace {:?}, not {requested:?}",
            token.name, token.workspace
        )));
    }
    if !need.met_by(&token.scopes) {
        let needed = match need {
            Need::AnyScope => "any scope".to_string(),
            Need::Scope(s) => format!("scope {s} (or admin)"),
        };
        return Err(Denied::PermissionDenied(format!(
            "authorization: token {:?} has scopes [{}]; this call needs {needed}",
            token.name,
            token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(token.workspace)
}

/// Why a call may not run.
#[derive(Debug)]
pub enum Denied {
    /// No token, or not a valid one.
    Unauthenticated(String),
    /// A valid token that may not do this (another workspace, a missing scope).
    PermissionDenied(String),
    /// The store could not answer.
    Store(crate::store::StoreError),
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated(m) => Error::Unauthenticated(m),
            Denied::PermissionDenied(m) => Error::PermissionDenied(m),
            Denied::Store(e) => Error::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_meets_every_need_and_others_only_their_own() {
        assert!(Need::Scope(Scope::Read).met_by(&[Scope::Admin]));
        assert!(Need::Scope(Scope::Ingest).met_by(&[Scope::Admin]));
        assert!(Need::Scope(Scope::Ingest).met_by(&[Scope::Ingest]));
        assert!(!Need::Scope(Scope::Read).met_by(&[Scope::Ingest]));
        assert!(!Need::Scope(Scope::Admin).met_by(&[Scope::Ingest, Scope::Read]));
        assert!(Need::AnyScope.met_by(&[Scope::Read]));
        assert!(!Need::AnyScope.met_by(&[]));
    }

    #[test]
    fn bearer_credentials_take_the_scheme_in_any_casing_and_nothing_else() {
        for value in ["Bearer vbt_x", "bearer vbt_x", "BEARER  vbt_x ", " Bearer vbt_x"] {
            assert_eq!(bearer_credentials(value), Some("vbt_x"), "{value:?}");
        }
        for value in ["vbt_x", "Basic dXNlcjpwYXNz", "Bearervbt_x", ""] {
            assert_eq!(bearer_credentials(value), None, "{value:?}");
        }
    }

    #[test]
    fn scopes_and_modes_parse_and_names_are_checked() {
        assert_eq!(Scope::parse("Ingest"), Some(Scope::Ingest));
        assert_eq!(Scope::parse("write"), None);
        assert_eq!("required".parse::<AuthMode>(), Ok(AuthMode::Required));
        assert!("on".parse::<AuthMode>().unwrap_err().contains("auto, required or off"));
        assert!(validate_token_name("survey-platform.prod_1").is_ok());
        for bad in ["", "has space", "é", &"x".repeat(65)] {
            assert!(validate_token_name(bad).unwrap_err().to_string().starts_with("name: "), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_hex_sha256() {
        // echo -n abc | sha256sum
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
