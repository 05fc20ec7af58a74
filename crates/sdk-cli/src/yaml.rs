//! A JSON value as block-style YAML. Strings are always double-quoted (JSON's escapes
//! are YAML's), so nothing is ever read back as another type.

use serde_json::Value;

/// `value` as a YAML document.
pub(crate) fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => sequence(items, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A key as it is when that is safe, quoted otherwise.
fn key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain { k.to_owned() } else { quoted(k) }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn mapping(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in map {
        out.push_str(&pad);
        out.push_str(&key(k));
        out.push(':');
        if is_block(v) {
            out.push('\n');
            block(v, indent + 2, out);
        } else {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        out.push_str(&pad);
        out.push('-');
        if is_block(item) {
            // The item's block starts on the dash's line.
            let mut inner = String::new();
            block(item, indent + 2, &mut inner);
            out.push(' ');
            out.push_str(inner.trim_start());
        } else {
            out.push(' ');
            out.push_str(&scalar(item));
            out.push('\n');
        }
    }
}

fn block(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) => mapping(map, indent, out),
        Value::Array(items) => sequence(items, indent, out),
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_become_block_yaml() {
        // Keys in sorted order, so that the map's order does not matter.
        let v = json!({
            "$ref": "#/x",
            "a": 1,
            "empty": {},
            "list": [{"k": "v", "n": [1, 2]}, "s", [], [[3]]],
            "yes": "no: really",
        });
        assert_eq!(
            to_string(&v),
            "\"$ref\": \"#/x\"\na: 1\nempty: {}\nlist:\n  - k: \"v\"\n    \"n\":\n      - 1\n      - 2\n  - \"s\"\n  - []\n  - - - 3\n\"yes\": \"no: really\""
        );
    }
}
