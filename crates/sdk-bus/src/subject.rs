//! Tenant-first subjects, validated once.

use std::fmt;

/// A subject or token that breaks the contract's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// A token is empty, too long, or has a character outside its alphabet.
    #[error("invalid {what} {token:?}: {reason}")]
    InvalidToken {
        /// Which token: `tenant id`, `agent id`, `token`, ...
        what: &'static str,
        /// The offending input.
        token: String,
        /// Why it was refused.
        reason: String,
    },
}

const MAX_TOKEN: usize = 64;

fn check(what: &'static str, token: &str, tenant: bool) -> Result<(), SubjectError> {
    let fail = |reason: String| SubjectError::InvalidToken {
        what,
        token: token.to_owned(),
        reason,
    };
    if token.is_empty() {
        return Err(fail("must not be empty".into()));
    }
    if token.len() > MAX_TOKEN {
        return Err(fail(format!(
            "is {} bytes; at most {MAX_TOKEN} are allowed",
            token.len()
        )));
    }
    for (i, c) in token.char_indices() {
        let ok = if tenant {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
        } else {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        };
        if !ok {
            let allowed = if tenant {
                "[a-z0-9_-]"
            } else {
                "[A-Za-z0-9_-]"
            };
            return Err(fail(format!(
                "character {c:?} at byte {i} is not allowed; use {allowed}"
            )));
        }
    }
    if tenant && !token.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(fail("must start with a letter or digit".into()));
    }
    Ok(())
}

/// A tenant id: 1 to 64 bytes of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Checks and wraps a tenant id.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] naming the bad input.
    pub fn new(id: &str) -> Result<TenantId, SubjectError> {
        check("tenant id", id, true)?;
        Ok(TenantId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One subject token: 1 to 64 bytes of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(String);

impl Token {
    /// Checks and wraps a token; `what` names it in the error (`agent id`, ...).
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] naming the bad input.
    pub fn new(what: &'static str, token: &str) -> Result<Token, SubjectError> {
        check(what, token, false)?;
        Ok(Token(token.to_owned()))
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A concrete subject that follows the contract: `sdk.<tenant>.<component>...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// `sdk.<t>.agent.<agent_id>.inbox`.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] when `agent_id` is not a valid token.
    pub fn agent_inbox(tenant: &TenantId, agent_id: &str) -> Result<Subject, SubjectError> {
        let agent = Token::new("agent id", agent_id)?;
        Ok(Subject(format!(
            "sdk.{tenant}.agent.{}.inbox",
            agent.as_str()
        )))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
