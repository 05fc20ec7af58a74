//! Tenant-first subjects, checked once when they are built.
//!
//! ```text
//! sdk.<tenant>.<component>.<action>[.<token>...]
//! ```

use std::fmt;

/// A subject, pattern or token that breaks the contract's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// A token is empty, too long, or has a character outside its alphabet.
    #[error("invalid {what} {token:?}: {reason}")]
    InvalidToken {
        /// Which token: `tenant id`, `agent id`, `event type`, ...
        what: &'static str,
        /// The offending input.
        token: String,
        /// Why it was refused.
        reason: String,
    },
    /// A whole subject does not follow `sdk.<tenant>.<component>.<action>...`.
    #[error("invalid subject {subject:?}: {reason}")]
    InvalidSubject {
        /// The subject as given.
        subject: String,
        /// Why it was refused.
        reason: String,
    },
}

const MAX_TOKEN: usize = 64;
const PREFIX: &str = "sdk";

/// What is wrong with one token, before it is worded for the caller.
enum Flaw {
    Empty,
    TooLong(usize),
    /// A character outside the alphabet, and its byte offset in the token.
    Char(usize, char),
    /// A tenant id that starts with `_` or `-`.
    Start(char),
}

fn flaw(token: &str, tenant: bool) -> Option<Flaw> {
    if token.is_empty() {
        return Some(Flaw::Empty);
    }
    if token.len() > MAX_TOKEN {
        return Some(Flaw::TooLong(token.len()));
    }
    let allowed = |c: char| {
        if tenant {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
        } else {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        }
    };
    if let Some((i, c)) = token.char_indices().find(|(_, c)| !allowed(*c)) {
        return Some(Flaw::Char(i, c));
    }
    match token.chars().next() {
        Some(c) if tenant && !c.is_ascii_alphanumeric() => Some(Flaw::Start(c)),
        _ => None,
    }
}

/// The character as a reader would name it: `space`, `'.'`, `wildcard '*'`, ...
fn describe(c: char) -> String {
    match c {
        ' ' => "space".to_owned(),
        '*' | '>' => format!("wildcard {c:?}"),
        c if c.is_control() => format!("control character {c:?}"),
        c => format!("{c:?}"),
    }
}

/// Says what is wrong and what to do. `at` is where the token starts in the input.
fn reason(flaw: Flaw, tenant: bool, at: usize) -> String {
    let alphabet = if tenant {
        "[a-z0-9_-]"
    } else {
        "A-Z, a-z, 0-9, _ and -"
    };
    match flaw {
        Flaw::Empty => format!("it is empty; use 1 to {MAX_TOKEN} characters of {alphabet}"),
        Flaw::TooLong(len) => {
            format!("it is {len} bytes long; shorten it to at most {MAX_TOKEN}")
        }
        // Kept as it was: configuration errors quote this text.
        Flaw::Char(i, c) if tenant => {
            format!(
                "character {c:?} at byte {} is not allowed; use {alphabet}",
                at + i
            )
        }
        Flaw::Char(i, c) => format!(
            "the {} at byte {} is not allowed; subject tokens use only {alphabet}",
            describe(c),
            at + i
        ),
        Flaw::Start(c) => format!("it starts with {c:?}; start it with a letter or a digit"),
    }
}

fn check(what: &'static str, token: &str, tenant: bool) -> Result<(), SubjectError> {
    match flaw(token, tenant) {
        None => Ok(()),
        Some(flaw) => Err(SubjectError::InvalidToken {
            what,
            token: token.to_owned(),
            reason: reason(flaw, tenant, 0),
        }),
    }
}

/// Checks a dotted event type part by part; an error names the whole type and the
/// byte offset in it.
fn check_event_type(event_type: &str) -> Result<(), SubjectError> {
    let fail = |reason: String| SubjectError::InvalidToken {
        what: "event type",
        token: event_type.to_owned(),
        reason,
    };
    if event_type.is_empty() {
        return Err(fail(reason(Flaw::Empty, false, 0)));
    }
    let mut at = 0;
    for part in event_type.split('.') {
        match flaw(part, false) {
            None => {}
            Some(Flaw::Empty) => {
                return Err(fail(format!(
                    "the part at byte {at} is empty; remove the extra '.' (a '.' separates parts)"
                )));
            }
            Some(Flaw::TooLong(len)) => {
                return Err(fail(format!(
                    "the part {part:?} is {len} bytes long; shorten it to at most {MAX_TOKEN}"
                )));
            }
            Some(other) => return Err(fail(reason(other, false, at))),
        }
        at += part.len() + 1;
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

    /// A handle that builds subjects and patterns inside `sdk.<tenant>.` only.
    pub fn scope(&self) -> TenantScope {
        TenantScope {
            tenant: self.clone(),
        }
    }

    /// The reply-inbox prefix of this tenant, `_INBOX.<tenant>`.
    pub fn inbox_prefix(&self) -> String {
        format!("_INBOX.{}", self.0)
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

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which family of the contract a subject belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// `sdk.<t>.agent.<agent_id>.inbox`
    AgentInbox,
    /// `sdk.<t>.events.<event_type>[.<more>]`
    Event,
    /// `sdk.<t>.workflow.<workflow_id>.<event>`
    Workflow,
    /// `sdk.<t>.status.<component>.<instance_id>`
    Status,
    /// `sdk.<t>.dlq.<original subject after the tenant>`
    DeadLetter,
    /// `sdk.<t>.<component>.<action>[...]`, e.g. `sdk.acme.rag.query`
    Component,
}

/// A concrete subject that follows the contract: `sdk.<tenant>.<component>...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    text: String,
    tenant: TenantId,
    tenant_end: usize,
    family: Family,
}

impl Subject {
    fn build(tenant: &TenantId, rest: &[&str], family: Family) -> Subject {
        let mut text = String::with_capacity(64);
        text.push_str(PREFIX);
        text.push('.');
        text.push_str(tenant.as_str());
        let tenant_end = text.len();
        for token in rest {
            text.push('.');
            text.push_str(token);
        }
        Subject {
            text,
            tenant: tenant.clone(),
            tenant_end,
            family,
        }
    }

    /// `sdk.<t>.agent.<agent_id>.inbox`.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] when `agent_id` is not a valid token.
    pub fn agent_inbox(tenant: &TenantId, agent_id: &str) -> Result<Subject, SubjectError> {
        let agent = Token::new("agent id", agent_id)?;
        Ok(Subject::build(
            tenant,
            &["agent", agent.as_str(), "inbox"],
            Family::AgentInbox,
        ))
    }

    /// `sdk.<t>.<component>.<action>`, a call to a component such as `sdk.acme.rag.query`.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] for a bad token, or a component name that is
    /// reserved for another family (`agent`, `events`, `workflow`, `status`, `dlq`).
    pub fn component(
        tenant: &TenantId,
        component: &str,
        action: &str,
    ) -> Result<Subject, SubjectError> {
        let c = Token::new("component", component)?;
        if matches!(
            component,
            "agent" | "events" | "workflow" | "status" | "dlq"
        ) {
            return Err(SubjectError::InvalidToken {
                what: "component",
                token: component.to_owned(),
                reason: "is reserved for its own subject family".into(),
            });
        }
        let a = Token::new("action", action)?;
        Ok(Subject::build(
            tenant,
            &[c.as_str(), a.as_str()],
            Family::Component,
        ))
    }

    /// `sdk.<t>.events.<event_type>`; a dotted type (`task.completed`) becomes several
    /// tokens, each checked.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] naming the bad part of the event type.
    pub fn event(tenant: &TenantId, event_type: &str) -> Result<Subject, SubjectError> {
        check_event_type(event_type)?;
        let mut rest = vec!["events"];
        rest.extend(event_type.split('.'));
        Ok(Subject::build(tenant, &rest, Family::Event))
    }

    /// `sdk.<t>.workflow.<workflow_id>.<event>`.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] for a bad id or event.
    pub fn workflow(
        tenant: &TenantId,
        workflow_id: &str,
        event: &str,
    ) -> Result<Subject, SubjectError> {
        let w = Token::new("workflow id", workflow_id)?;
        let e = Token::new("workflow event", event)?;
        Ok(Subject::build(
            tenant,
            &["workflow", w.as_str(), e.as_str()],
            Family::Workflow,
        ))
    }

    /// `sdk.<t>.status.<component>.<instance_id>`.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] for a bad token.
    pub fn status(
        tenant: &TenantId,
        component: &str,
        instance_id: &str,
    ) -> Result<Subject, SubjectError> {
        let c = Token::new("component", component)?;
        let i = Token::new("instance id", instance_id)?;
        Ok(Subject::build(
            tenant,
            &["status", c.as_str(), i.as_str()],
            Family::Status,
        ))
    }

    /// The dead-letter subject of this one: `sdk.<t>.dlq.<rest of this subject>`.
    pub fn dead_letter(&self) -> Subject {
        let rest = &self.text[self.tenant_end..];
        let mut text = String::with_capacity(self.text.len() + 4);
        text.push_str(&self.text[..self.tenant_end]);
        text.push_str(".dlq");
        text.push_str(rest);
        Subject {
            text,
            tenant: self.tenant.clone(),
            tenant_end: self.tenant_end,
            family: Family::DeadLetter,
        }
    }

    /// Parses and checks a subject received from the wire.
    ///
    /// # Errors
    /// [`SubjectError::InvalidSubject`] or [`SubjectError::InvalidToken`].
    pub fn parse(subject: &str) -> Result<Subject, SubjectError> {
        let invalid = |reason: &str| SubjectError::InvalidSubject {
            subject: subject.to_owned(),
            reason: reason.to_owned(),
        };
        let tokens: Vec<&str> = subject.split('.').collect();
        if tokens.first() != Some(&PREFIX) {
            return Err(invalid("must start with \"sdk.\""));
        }
        if tokens.len() < 4 {
            return Err(invalid("needs at least sdk.<tenant>.<component>.<action>"));
        }
        check("tenant id", tokens[1], true)?;
        for token in &tokens[2..] {
            check("token", token, false)?;
        }
        let family = match (tokens[2], tokens.len()) {
            ("agent", 5) if tokens[4] == "inbox" => Family::AgentInbox,
            ("events", _) => Family::Event,
            ("workflow", 5) => Family::Workflow,
            ("status", 5) => Family::Status,
            ("dlq", _) => Family::DeadLetter,
            ("agent" | "workflow" | "status", _) => {
                return Err(invalid(&format!(
                    "does not have the shape of the {} family",
                    tokens[2]
                )));
            }
            _ => Family::Component,
        };
        Ok(Subject {
            text: subject.to_owned(),
            tenant: TenantId(tokens[1].to_owned()),
            tenant_end: PREFIX.len() + 1 + tokens[1].len(),
            family,
        })
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The family this subject belongs to.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The low-cardinality template for span names, e.g.
    /// `sdk.{tenant}.agent.{agent_id}.inbox`.
    pub fn template(&self) -> String {
        let rest: Vec<&str> = self.text[self.tenant_end..]
            .split('.')
            .filter(|t| !t.is_empty())
            .collect();
        let tail = match self.family {
            Family::AgentInbox => "agent.{agent_id}.inbox".to_owned(),
            Family::Event => "events.{event_type}".to_owned(),
            Family::Workflow => "workflow.{workflow_id}.{event}".to_owned(),
            Family::Status => "status.{component}.{instance_id}".to_owned(),
            Family::DeadLetter => "dlq.{subject}".to_owned(),
            // Component and action are low-cardinality names; any further token may
            // be an id, so it is named, not copied.
            Family::Component => rest
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i < 2 {
                        (*t).to_owned()
                    } else {
                        "{token}".to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("."),
        };
        format!("sdk.{{tenant}}.{tail}")
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A subscription pattern: tokens, `*` for exactly one token, and a final `>` for one
/// or more.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectPattern {
    text: String,
    tenant: Option<TenantId>,
}

impl SubjectPattern {
    /// Parses a pattern such as `sdk.*.rag.query` or `sdk.acme.events.>`.
    ///
    /// # Errors
    /// [`SubjectError`] naming the bad token; `>` anywhere but last is refused.
    pub fn new(pattern: &str) -> Result<SubjectPattern, SubjectError> {
        let invalid = |reason: &str| SubjectError::InvalidSubject {
            subject: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let tokens: Vec<&str> = pattern.split('.').collect();
        if tokens.first() != Some(&PREFIX) {
            return Err(invalid("must start with \"sdk.\""));
        }
        if tokens.len() < 3 {
            return Err(invalid("needs at least sdk.<tenant>.<token>"));
        }
        for (i, token) in tokens.iter().enumerate().skip(1) {
            match *token {
                "*" => {}
                ">" if i == tokens.len() - 1 => {}
                ">" => return Err(invalid("\">\" may only be the last token")),
                t if i == 1 => check("tenant id", t, true)?,
                t => check("token", t, false)?,
            }
        }
        let tenant = (tokens[1] != "*" && tokens[1] != ">").then(|| TenantId(tokens[1].to_owned()));
        Ok(SubjectPattern {
            text: pattern.to_owned(),
            tenant,
        })
    }

    /// `sdk.*.<component>.<action>`: a shared service that serves every tenant.
    ///
    /// # Errors
    /// [`SubjectError::InvalidToken`] for a bad token.
    pub fn all_tenants(component: &str, action: &str) -> Result<SubjectPattern, SubjectError> {
        let c = Token::new("component", component)?;
        let a = Token::new("action", action)?;
        Ok(SubjectPattern {
            text: format!("sdk.*.{c}.{a}"),
            tenant: None,
        })
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tenant, when the pattern names one (not `*` or `>`).
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }

    /// Whether `subject` matches this pattern.
    pub fn matches(&self, subject: &str) -> bool {
        pattern_matches(&self.text, subject)
    }

    /// The low-cardinality template of `subject` received through this pattern, for
    /// span names and metric labels. When the pattern fixes every token after the
    /// tenant, it is the subject's own template; when it has wildcards there, it is
    /// the pattern's shape (`*` as `{token}`, `>` as `{rest}`), so a sender cannot
    /// make a new series with each token it invents.
    pub fn template_for(&self, subject: &Subject) -> String {
        let mut tokens = self.text.split('.');
        let wild_after_tenant =
            tokens.nth(2).is_some() && self.text.split('.').skip(2).any(|t| t == "*" || t == ">");
        if !wild_after_tenant {
            return subject.template();
        }
        self.text
            .split('.')
            .enumerate()
            .map(|(i, t)| match (i, t) {
                (1, _) => "{tenant}",
                (_, "*") => "{token}",
                (_, ">") => "{rest}",
                (_, t) => t,
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<&Subject> for SubjectPattern {
    fn from(subject: &Subject) -> SubjectPattern {
        SubjectPattern {
            text: subject.text.clone(),
            tenant: Some(subject.tenant.clone()),
        }
    }
}

/// NATS wildcard matching: `*` is one token, a final `>` is one or more.
pub(crate) fn pattern_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Builds subjects and patterns inside `sdk.<tenant>.` and nowhere else.
///
/// ```
/// use sdk_bus::TenantId;
/// let acme = TenantId::new("acme")?.scope();
/// assert_eq!(acme.event("task.completed")?.as_str(), "sdk.acme.events.task.completed");
/// assert_eq!(acme.pattern(&["events", ">"])?.as_str(), "sdk.acme.events.>");
/// assert!(acme.pattern(&["*", ">"]).is_ok());
/// # Ok::<(), sdk_bus::SubjectError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantScope {
    tenant: TenantId,
}

impl TenantScope {
    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// `sdk.<t>.agent.<agent_id>.inbox`.
    ///
    /// # Errors
    /// As [`Subject::agent_inbox`].
    pub fn agent_inbox(&self, agent_id: &str) -> Result<Subject, SubjectError> {
        Subject::agent_inbox(&self.tenant, agent_id)
    }

    /// `sdk.<t>.<component>.<action>`.
    ///
    /// # Errors
    /// As [`Subject::component`].
    pub fn component(&self, component: &str, action: &str) -> Result<Subject, SubjectError> {
        Subject::component(&self.tenant, component, action)
    }

    /// `sdk.<t>.events.<event_type>`.
    ///
    /// # Errors
    /// As [`Subject::event`].
    pub fn event(&self, event_type: &str) -> Result<Subject, SubjectError> {
        Subject::event(&self.tenant, event_type)
    }

    /// `sdk.<t>.workflow.<workflow_id>.<event>`.
    ///
    /// # Errors
    /// As [`Subject::workflow`].
    pub fn workflow(&self, workflow_id: &str, event: &str) -> Result<Subject, SubjectError> {
        Subject::workflow(&self.tenant, workflow_id, event)
    }

    /// `sdk.<t>.status.<component>.<instance_id>`.
    ///
    /// # Errors
    /// As [`Subject::status`].
    pub fn status(&self, component: &str, instance_id: &str) -> Result<Subject, SubjectError> {
        Subject::status(&self.tenant, component, instance_id)
    }

    /// A pattern inside this tenant: `sdk.<t>.<tokens...>`, where tokens may be `*`
    /// or a final `>`.
    ///
    /// # Errors
    /// [`SubjectError`] naming the bad token.
    pub fn pattern(&self, tokens: &[&str]) -> Result<SubjectPattern, SubjectError> {
        let mut text = format!("{PREFIX}.{}", self.tenant);
        for token in tokens {
            if !matches!(*token, "*" | ">") {
                check("token", token, false)?;
            }
            text.push('.');
            text.push_str(token);
        }
        SubjectPattern::new(&text)
    }
}

#[cfg(test)]
mod tests;
