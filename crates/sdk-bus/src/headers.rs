//! Message headers: ordered, matched case-insensitively, checked on insert.

use std::borrow::Cow;
use std::fmt;

/// A header name or value that NATS cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The name is empty or has a character outside the HTTP token alphabet.
    #[error("invalid header name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why.
        reason: String,
    },
    /// The value contains CR, LF or another control character.
    #[error("invalid value for header {name:?}: {reason}")]
    InvalidValue {
        /// The header.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Headers in insertion order. Lookups ignore case, as the contract asks of readers
/// (async-nats compares names case-sensitively, so this type does it instead).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    // Names are usually the contract's constants: borrowed, never copied.
    entries: Vec<(Cow<'static, str>, String)>,
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k.as_ref(), v)))
            .finish()
    }
}

fn valid_name(name: &str) -> Result<(), HeaderError> {
    let fail = |reason: String| HeaderError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(fail("must not be empty".into()));
    }
    for (i, b) in name.bytes().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if !ok {
            return Err(fail(format!(
                "byte {i} ({:?}) is not allowed in a header name",
                char::from(b)
            )));
        }
    }
    Ok(())
}

fn valid_value(name: &str, value: &str) -> Result<(), HeaderError> {
    if let Some((i, c)) = value
        .char_indices()
        .find(|(_, c)| *c == '\r' || *c == '\n' || (c.is_control() && *c != '\t'))
    {
        return Err(HeaderError::InvalidValue {
            name: name.to_owned(),
            reason: format!(
                "control character {c:?} at byte {i}; CR and LF would split the header block"
            ),
        });
    }
    Ok(())
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// With room for `n` headers.
    pub fn with_capacity(n: usize) -> Headers {
        Headers {
            entries: Vec::with_capacity(n),
        }
    }

    /// Sets `name` to `value`, replacing any value under the same name (any case).
    ///
    /// # Errors
    /// [`HeaderError`] for a bad name, or a value with CR, LF or other controls.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        self.insert_owned(name, value.to_owned())
    }

    /// As [`Headers::insert`], taking the value by value: neither the value nor a
    /// contract name (`traceparent`, `baggage`, `ce-*`, ...) is copied. For a
    /// propagator that builds each value as a `String`.
    ///
    /// # Errors
    /// As [`Headers::insert`].
    pub fn insert_owned(&mut self, name: &str, value: String) -> Result<(), HeaderError> {
        let name = match KNOWN_NAMES.iter().find(|k| **k == name) {
            Some(known) => Cow::Borrowed(*known),
            None => {
                valid_name(name)?;
                Cow::Owned(name.to_owned())
            }
        };
        valid_value(&name, &value)?;
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        self.entries.push((name, value));
        Ok(())
    }

    /// As [`Headers::insert`], for a constant name and an owned value: no copies.
    pub(crate) fn insert_static(
        &mut self,
        name: &'static str,
        value: String,
    ) -> Result<(), HeaderError> {
        valid_value(name, &value)?;
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.entries.push((Cow::Borrowed(name), value));
        Ok(())
    }

    /// Adds `name: value` without removing existing values.
    ///
    /// # Errors
    /// As [`Headers::insert`].
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        valid_name(name)?;
        valid_value(name, value)?;
        self.entries
            .push((Cow::Owned(name.to_owned()), value.to_owned()));
        Ok(())
    }

    /// Adds a header that is known to be valid (names and values built by this crate).
    pub(crate) fn push_trusted(&mut self, name: &'static str, value: String) {
        self.entries.push((Cow::Borrowed(name), value));
    }

    /// Copies a header from another valid header map (checked when it was read or
    /// inserted there).
    pub(crate) fn push_copied(&mut self, name: &str, value: &str) {
        self.entries
            .push((Cow::Owned(name.to_owned()), value.to_owned()));
    }

    /// Only the headers named in `names` (any case), in order; constant names are
    /// shared, not copied.
    pub(crate) fn only(&self, names: &[&str]) -> Headers {
        Headers {
            entries: self
                .entries
                .iter()
                .filter(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
                .cloned()
                .collect(),
        }
    }

    /// The first value of `name`, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` appears more than once (in any case) with different values.
    pub(crate) fn values_differ(&self, name: &str) -> bool {
        let mut first: Option<&str> = None;
        for (k, v) in &self.entries {
            if k.eq_ignore_ascii_case(name) {
                match first {
                    None => first = Some(v),
                    Some(f) if f != v => return true,
                    Some(_) => {}
                }
            }
        }
        false
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// All headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The size of the NATS header block these headers make, in bytes
    /// (`NATS/1.0\r\n`, one `name: value\r\n` each, and a closing `\r\n`).
    pub fn wire_size(&self) -> usize {
        if self.entries.is_empty() {
            return 0;
        }
        10 + 2
            + self
                .entries
                .iter()
                .map(|(k, v)| k.len() + 2 + v.len() + 2)
                .sum::<usize>()
    }

    /// Moves the headers into an async-nats map: constant names cost nothing, values
    /// move without a copy. Names and values were checked on the way in, so the
    /// conversions cannot fail or panic.
    pub(crate) fn into_nats(self) -> async_nats::HeaderMap {
        use async_nats::header::{HeaderName, HeaderValue};
        let mut map = async_nats::HeaderMap::new();
        for (k, v) in self.entries {
            let name = match k {
                Cow::Borrowed(s) => HeaderName::from_static(s),
                Cow::Owned(s) => match HeaderName::try_from(s) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            map.append(name, HeaderValue::from(v));
        }
        map
    }

    pub(crate) fn from_nats(map: Option<&async_nats::HeaderMap>) -> Headers {
        let Some(map) = map else {
            return Headers::new();
        };
        // Room for every name once, plus trace context added on the way out.
        let mut headers = Headers::with_capacity(map.len() + 2);
        for (name, values) in map.iter() {
            let name = known_name(name.as_ref());
            for value in values {
                headers
                    .entries
                    .push((name.clone(), value.as_str().to_owned()));
            }
        }
        headers
    }
}

/// Names every SDK message carries, so a received one borrows the constant instead of
/// copying the name (async-nats keeps the name as sent: an exact match is the fast
/// path, anything else is copied as before).
const KNOWN_NAMES: [&str; 17] = [
    crate::names::SPEC_VERSION,
    crate::names::ID,
    crate::names::SOURCE,
    crate::names::TYPE,
    crate::names::TIME,
    crate::names::DATA_CONTENT_TYPE,
    crate::names::DATA_SCHEMA,
    crate::names::SUBJECT,
    crate::names::TENANT_ID,
    crate::names::CORRELATION_ID,
    crate::names::CAUSATION_ID,
    crate::names::CONTENT_ENCODING,
    crate::names::NATS_MSG_ID,
    "traceparent",
    "tracestate",
    "baggage",
    "accept",
];

fn known_name(name: &str) -> Cow<'static, str> {
    match KNOWN_NAMES.iter().find(|k| **k == name) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case() {
        let mut h = Headers::new();
        h.insert("Ce-Id", "1").unwrap();
        assert_eq!(h.get("ce-id"), Some("1"));
        assert_eq!(h.get("CE-ID"), Some("1"));
        h.insert("ce-id", "2").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("Ce-Id"), Some("2"));
    }

    #[test]
    fn cr_and_lf_are_errors_not_panics() {
        let mut h = Headers::new();
        let err = h.insert("ce-subject", "a\r\nX-Evil: 1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for header \"ce-subject\": control character '\\r' at byte 1; CR and LF would split the header block"
        );
        assert!(h.insert("bad name", "x").is_err());
        assert!(h.insert("", "x").is_err());
        assert!(h.insert("x:y", "x").is_err());
        assert!(h.is_empty());
    }

    #[test]
    fn received_names_keep_their_spelling_whether_known_or_not() {
        let mut map = async_nats::HeaderMap::new();
        map.insert("ce-id", "1");
        map.insert("Ce-Type", "t");
        map.insert("x-custom", "v");
        let h = Headers::from_nats(Some(&map));
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("CE-ID"), Some("1"));
        assert_eq!(h.get("ce-type"), Some("t"));
        let mut names: Vec<&str> = h.iter().map(|(k, _)| k).collect();
        names.sort_unstable();
        assert_eq!(names, ["Ce-Type", "ce-id", "x-custom"]);
        assert!(matches!(
            h.entries.iter().find(|(k, _)| k == "ce-id"),
            Some((Cow::Borrowed(_), _))
        ));
    }

    #[test]
    fn the_wire_size_counts_the_header_block() {
        let mut h = Headers::new();
        assert_eq!(h.wire_size(), 0);
        h.insert("a", "bc").unwrap();
        // "NATS/1.0\r\n" + "a: bc\r\n" + "\r\n"
        assert_eq!(h.wire_size(), 10 + 7 + 2);
    }
}
