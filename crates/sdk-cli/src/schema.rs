//! `sdk schema list|show|check`: the `sdk.v1` schemas this build knows, and the
//! compatibility check of `proto/` against `proto/snapshot.json`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use prost::Message as _;
use sdk_codec::compat::{Field, MessageShape, Snapshot, breaking};
use serde_json::{Value, json};

use crate::cli::SchemaCommand;
use crate::error::{CliError, one_line};
use crate::out;
use crate::payload::{self, TypeInfo};

/// `sdk schema …`.
pub(crate) fn run(command: SchemaCommand) -> Result<(), CliError> {
    match command {
        SchemaCommand::List { json } => list(json),
        SchemaCommand::Show { type_name, json } => show(&type_name, json),
        SchemaCommand::Check {
            proto_dir,
            snapshot,
            builtin,
        } => check(&proto_dir, snapshot, builtin),
    }
}

fn current() -> Result<Snapshot, CliError> {
    Snapshot::current()
        .map_err(|e| CliError::new(format!("the compiled schemas cannot be read: {e}")))
}

fn shape<'a>(snap: &'a Snapshot, info: &TypeInfo) -> Option<&'a MessageShape> {
    snap.messages.get(&info.full_name())
}

fn list(json: bool) -> Result<(), CliError> {
    let snap = current()?;
    let mut rows = Vec::new();
    for info in payload::all() {
        let Some(schema) = &info.schema else { continue };
        let fields = shape(&snap, &info).map_or(0, |s| s.fields.len());
        if json {
            out::json(&json!({
                "type": info.name,
                "name": schema.name(),
                "schema": schema.to_string(),
                "version": schema.version(),
                "fields": fields,
            }))?;
        } else {
            rows.push(vec![
                info.name.to_owned(),
                schema.to_string(),
                schema.version().to_string(),
                fields.to_string(),
            ]);
        }
    }
    if json {
        return Ok(());
    }
    out::line(&out::table(&["TYPE", "SCHEMA", "VERSION", "FIELDS"], &rows))
}

/// A field's type as people write it: `string`, `repeated float`, `map<string, string>`,
/// `sdk.v1.TaskStatus`.
fn type_text(f: &Field) -> String {
    let mut t = f
        .r#type
        .replace(", Message.", ", ")
        .replace(", Enum.", ", ");
    for scalar in [
        "String", "Bool", "Bytes", "Int32", "Int64", "Uint32", "Uint64", "Sint32", "Sint64",
        "Fixed32", "Fixed64", "Sfixed32", "Sfixed64", "Float", "Double",
    ] {
        for (from, to) in [
            (
                format!("<{scalar},"),
                format!("<{},", scalar.to_ascii_lowercase()),
            ),
            (
                format!(" {scalar}>"),
                format!(" {}>", scalar.to_ascii_lowercase()),
            ),
        ] {
            t = t.replace(&from, &to);
        }
        if t == scalar {
            t = scalar.to_ascii_lowercase();
        }
    }
    if f.label == "Repeated" && !t.starts_with("map<") {
        format!("repeated {t}")
    } else {
        t
    }
}

/// The `sdk.v1` types a field refers to.
fn referenced(f: &Field) -> Vec<String> {
    f.r#type
        .split(['<', '>', ',', ' '])
        .map(|t| t.trim_start_matches("Message.").trim_start_matches("Enum."))
        .filter(|t| t.starts_with("sdk.v1."))
        .map(str::to_owned)
        .collect()
}

fn fields_json(shape: &MessageShape) -> Value {
    Value::Array(
        shape
            .fields
            .iter()
            .map(|f| {
                json!({
                    "number": f.number,
                    "json_name": f.json_name,
                    "name": f.name,
                    "type": type_text(f),
                })
            })
            .collect(),
    )
}

fn fields_table(shape: &MessageShape) -> String {
    let rows: Vec<Vec<String>> = shape
        .fields
        .iter()
        .map(|f| {
            vec![
                f.number.to_string(),
                f.json_name.clone(),
                f.name.clone(),
                type_text(f),
            ]
        })
        .collect();
    out::table(&["NUMBER", "JSON NAME", "PROTO NAME", "TYPE"], &rows)
}

fn show(name: &str, json: bool) -> Result<(), CliError> {
    let info = payload::find(name, false)?;
    let snap = current()?;
    let full = info.full_name();
    let shape = shape(&snap, &info)
        .ok_or_else(|| CliError::new(format!("{full} is missing from the compiled schemas")))?;
    // Every sdk.v1 type it refers to, transitively.
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = shape.fields.iter().flat_map(referenced).collect();
    while let Some(t) = todo.pop() {
        if t == full || !seen.insert(t.clone()) {
            continue;
        }
        if let Some(m) = snap.messages.get(&t) {
            todo.extend(m.fields.iter().flat_map(referenced));
        }
    }
    let example = (info.example)();
    let schema = info
        .schema
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let version = info.schema.as_ref().map_or(0, sdk_codec::SchemaId::version);
    if json {
        let mut enums = serde_json::Map::new();
        let mut messages = serde_json::Map::new();
        for t in &seen {
            if let Some(values) = snap.enums.get(t) {
                enums.insert(t.clone(), json!(values));
            }
            if let Some(m) = snap.messages.get(t) {
                messages.insert(t.clone(), fields_json(m));
            }
        }
        return out::json(&json!({
            "type": info.name,
            "name": full,
            "schema": schema,
            "version": version,
            "fields": fields_json(shape),
            "reserved_numbers": shape.reserved_numbers,
            "reserved_names": shape.reserved_names,
            "enums": enums,
            "messages": messages,
            "example": example,
        }));
    }
    let mut text = format!("{full}  version {version}  {schema}\n");
    text.push_str(&fields_table(shape));
    if !shape.reserved_numbers.is_empty() || !shape.reserved_names.is_empty() {
        text.push_str(&format!(
            "\nreserved: numbers {:?}, names {:?}",
            shape.reserved_numbers, shape.reserved_names
        ));
    }
    for t in &seen {
        if let Some(values) = snap.enums.get(t) {
            let mut sorted: Vec<(&String, &i32)> = values.iter().collect();
            sorted.sort_by_key(|(_, n)| **n);
            let list: Vec<String> = sorted.iter().map(|(k, n)| format!("{k}={n}")).collect();
            text.push_str(&format!("\n\nenum {t}: {}", list.join(", ")));
        }
        if let Some(m) = snap.messages.get(t) {
            text.push_str(&format!("\n\nmessage {t}\n{}", fields_table(m)));
        }
    }
    let pretty = serde_json::to_string_pretty(&example).unwrap_or_default();
    text.push_str(&format!("\n\nexample (JSON):\n{pretty}"));
    out::line(&text)
}

/// Every `.proto` file under `dir`, relative to it, sorted.
fn proto_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", d.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "proto")
                && let Ok(relative) = path.strip_prefix(dir)
            {
                found.push(relative.to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Compiles `dir` as the build does (protox, no system protoc) and takes its snapshot.
fn compile(dir: &Path) -> Result<Snapshot, CliError> {
    if !dir.is_dir() {
        return Err(
            CliError::usage(format!("no proto directory at {}", dir.display())).hint(
                "run it from the repository root, pass --proto-dir, or check the compiled-in \
             schemas with --builtin",
            ),
        );
    }
    let files = proto_files(dir)?;
    if files.is_empty() {
        return Err(
            CliError::usage(format!("no .proto files under {}", dir.display()))
                .hint("pass the directory that holds sdk/v1/*.proto with --proto-dir"),
        );
    }
    let fds = protox::compile(&files, [dir]).map_err(|e| {
        CliError::new(format!(
            "{} does not compile: {}",
            dir.display(),
            one_line(&e.to_string())
        ))
        .hint("fix the .proto file it names")
    })?;
    Snapshot::from_descriptor_set(&fds.encode_to_vec())
        .map_err(|e| CliError::new(format!("cannot read the compiled descriptors: {e}")))
}

fn check(proto_dir: &Path, snapshot: Option<PathBuf>, builtin: bool) -> Result<(), CliError> {
    let snapshot = snapshot.unwrap_or_else(|| proto_dir.join("snapshot.json"));
    let text = std::fs::read_to_string(&snapshot).map_err(|e| {
        CliError::usage(format!(
            "cannot read the snapshot {}: {e}",
            snapshot.display()
        ))
        .hint("run it from the repository root, or pass --snapshot")
    })?;
    let old: Snapshot = serde_json::from_str(&text).map_err(|e| {
        CliError::new(format!(
            "{} is not a schema snapshot: {e}",
            snapshot.display()
        ))
        .hint("restore it from git")
    })?;
    let (new, what) = if builtin {
        (current()?, "the schemas compiled into sdk".to_owned())
    } else {
        (compile(proto_dir)?, proto_dir.display().to_string())
    };
    let broken = breaking(&old, &new);
    if !broken.is_empty() {
        for problem in &broken {
            out::line(&format!("breaking: {problem}"))?;
        }
        return Err(CliError::new(format!(
            "{} breaking change(s) in {what} against {}",
            broken.len(),
            snapshot.display()
        ))
        .hint("give each broken type a new version with an upcaster, or undo the change"));
    }
    let summary = format!("{} messages, {} enums", new.messages.len(), new.enums.len());
    if old == new {
        out::line(&format!(
            "ok: no change in {what} since {} ({summary})",
            snapshot.display()
        ))
    } else {
        out::line(&format!(
            "ok: {what} changed compatibly since {} ({summary}); refresh the snapshot with \
             UPDATE_PROTO_SNAPSHOT=1 scripts/test -p sdk-codec --test proto_breaking",
            snapshot.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(label: &str, ty: &str) -> Field {
        Field {
            name: "x".into(),
            json_name: "x".into(),
            number: 1,
            label: label.into(),
            r#type: ty.into(),
        }
    }

    #[test]
    fn types_read_like_proto() {
        assert_eq!(type_text(&field("Optional", "String")), "string");
        assert_eq!(type_text(&field("Repeated", "Float")), "repeated float");
        assert_eq!(
            type_text(&field("Repeated", "map<String, String>")),
            "map<string, string>"
        );
        assert_eq!(
            type_text(&field("Optional", "sdk.v1.TaskStatus")),
            "sdk.v1.TaskStatus"
        );
        assert_eq!(
            referenced(&field("Repeated", "map<String, Message.sdk.v1.TokenUsage>")),
            vec!["sdk.v1.TokenUsage".to_owned()]
        );
    }
}
