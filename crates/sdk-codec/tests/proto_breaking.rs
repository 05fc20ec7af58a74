//! Holds `proto/` against the committed descriptor snapshot `proto/snapshot.json` and
//! fails on breaking changes (the rules of `buf breaking` at WIRE_JSON level: removed,
//! renumbered, retyped or renamed fields, reused numbers, removed enum values).
//!
//! After a compatible change (a new field), refresh the snapshot:
//! `UPDATE_PROTO_SNAPSHOT=1 scripts/test -p sdk-codec --test proto_breaking`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::FileDescriptorSet;
use sdk_codec::Payload;
use sdk_codec::v1::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Field {
    name: String,
    json_name: String,
    number: i32,
    label: String,
    r#type: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct MessageShape {
    /// The schema version the Rust side declares (`Payload::SCHEMA`), 0 for nested
    /// helper messages.
    version: u32,
    fields: Vec<Field>,
    reserved_numbers: Vec<i32>,
    reserved_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct Snapshot {
    messages: BTreeMap<String, MessageShape>,
    enums: BTreeMap<String, BTreeMap<String, i32>>,
}

fn versions() -> BTreeMap<&'static str, u32> {
    fn v<T: Payload>() -> (&'static str, u32) {
        let s = T::SCHEMA.unwrap();
        let name: &'static str = Box::leak(s.name().to_owned().into_boxed_str());
        (name, s.version())
    }
    [
        v::<AgentMessage>(),
        v::<AgentTask>(),
        v::<TaskResult>(),
        v::<EventMessage>(),
        v::<Document>(),
        v::<DocumentChunk>(),
        v::<StatusUpdate>(),
        v::<ErrorInfo>(),
    ]
    .into_iter()
    .collect()
}

fn current() -> Snapshot {
    let fds = FileDescriptorSet::decode(sdk_codec::FILE_DESCRIPTOR_SET).unwrap();
    let versions = versions();
    let mut snap = Snapshot::default();
    for file in fds.file.iter().filter(|f| f.package() == "sdk.v1") {
        for e in &file.enum_type {
            snap.enums.insert(
                format!("sdk.v1.{}", e.name()),
                e.value
                    .iter()
                    .map(|v| (v.name().to_owned(), v.number()))
                    .collect(),
            );
        }
        for m in &file.message_type {
            let full = format!("sdk.v1.{}", m.name());
            let fields = m
                .field
                .iter()
                .map(|f| {
                    // Map entries are nested messages; name them by their key/value types.
                    let ty = if f.type_name().is_empty() {
                        format!("{:?}", f.r#type())
                    } else {
                        let nested = m.nested_type.iter().find(|n| {
                            f.type_name().ends_with(&format!(".{}", n.name()))
                                && n.options.as_ref().is_some_and(|o| o.map_entry())
                        });
                        match nested {
                            Some(entry) => format!(
                                "map<{:?}, {:?}{}>",
                                entry.field[0].r#type(),
                                entry.field[1].r#type(),
                                entry.field[1].type_name()
                            ),
                            None => f.type_name().trim_start_matches('.').to_owned(),
                        }
                    };
                    Field {
                        name: f.name().to_owned(),
                        json_name: f.json_name().to_owned(),
                        number: f.number(),
                        label: format!("{:?}", f.label()),
                        r#type: ty,
                    }
                })
                .collect();
            let mut reserved_numbers = Vec::new();
            for r in &m.reserved_range {
                reserved_numbers.extend(r.start()..r.end());
            }
            snap.messages.insert(
                full.clone(),
                MessageShape {
                    version: versions.get(full.as_str()).copied().unwrap_or(0),
                    fields,
                    reserved_numbers,
                    reserved_names: m.reserved_name.clone(),
                },
            );
        }
    }
    snap
}

/// The breaking changes from `old` to `new`, as messages that say how to fix them.
fn breaking(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (name, was) in &old.messages {
        let Some(now) = new.messages.get(name) else {
            out.push(format!("message {name} was removed"));
            continue;
        };
        let mut problems = Vec::new();
        for f in &was.fields {
            match now.fields.iter().find(|g| g.number == f.number) {
                Some(g) if g.name != f.name || g.json_name != f.json_name => {
                    problems.push(format!(
                        "field {} ({}) was renamed to {} (JSON names are part of the wire format)",
                        f.name, f.number, g.name
                    ))
                }
                Some(g) if g.r#type != f.r#type || g.label != f.label => problems.push(format!(
                    "field {} ({}) changed type from {} {} to {} {}",
                    f.name, f.number, f.label, f.r#type, g.label, g.r#type
                )),
                Some(_) => {}
                None => match now.fields.iter().find(|g| g.name == f.name) {
                    Some(g) => problems.push(format!(
                        "field {} was renumbered from {} to {}",
                        f.name, f.number, g.number
                    )),
                    None => problems.push(format!("field {} ({}) was removed", f.name, f.number)),
                },
            }
        }
        for g in &now.fields {
            let was_field = was.fields.iter().any(|f| f.number == g.number);
            if !was_field && was.reserved_numbers.contains(&g.number) {
                problems.push(format!(
                    "field {} reuses reserved number {}",
                    g.name, g.number
                ));
            }
            if !was_field && was.reserved_names.contains(&g.name) {
                problems.push(format!("field {} reuses a reserved name", g.name));
            }
        }
        if !problems.is_empty() && now.version <= was.version {
            out.push(format!(
                "breaking change in {name} (still at version {}): {}. A breaking change needs a \
                 new version: bump {name}'s version in sdk-codec (proto_payload! in src/proto.rs), \
                 keep the old shape as a legacy type with an upcaster (see sdk_codec::legacy), \
                 reserve the old field numbers and names, then refresh the snapshot with \
                 UPDATE_PROTO_SNAPSHOT=1",
                now.version,
                problems.join("; ")
            ));
        }
    }
    for (name, values) in &old.enums {
        let Some(now) = new.enums.get(name) else {
            out.push(format!("enum {name} was removed"));
            continue;
        };
        for (value, number) in values {
            match now.get(value) {
                Some(n) if n == number => {}
                Some(n) => out.push(format!(
                    "enum value {name}.{value} was renumbered from {number} to {n}"
                )),
                None => out.push(format!(
                    "enum value {name}.{value} was removed or renamed (JSON carries enum names)"
                )),
            }
        }
    }
    out
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/snapshot.json")
}

#[test]
fn proto_has_no_breaking_change_against_the_snapshot() {
    let now = current();
    let path = snapshot_path();
    if std::env::var_os("UPDATE_PROTO_SNAPSHOT").is_some() {
        let committed: Option<Snapshot> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(old) = committed {
            let broken = breaking(&old, &now);
            assert!(
                broken.is_empty(),
                "refusing to refresh over breaking changes:\n{}",
                broken.join("\n")
            );
        }
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); create it with UPDATE_PROTO_SNAPSHOT=1",
            path.display()
        )
    });
    let old: Snapshot = serde_json::from_str(&text).unwrap();
    let broken = breaking(&old, &now);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert_eq!(
        old, now,
        "proto/ changed compatibly; refresh the snapshot with \
         UPDATE_PROTO_SNAPSHOT=1 scripts/test -p sdk-codec --test proto_breaking"
    );
}

mod checker {
    use super::*;

    fn with(edit: impl FnOnce(&mut Snapshot)) -> Vec<String> {
        let old = current();
        let mut new = old.clone();
        edit(&mut new);
        breaking(&old, &new)
    }

    fn chunk(s: &mut Snapshot) -> &mut MessageShape {
        s.messages.get_mut("sdk.v1.DocumentChunk").unwrap()
    }

    #[test]
    fn an_unchanged_schema_is_not_breaking() {
        assert!(with(|_| {}).is_empty());
    }

    #[test]
    fn a_new_field_is_not_breaking() {
        assert!(
            with(|s| chunk(s).fields.push(Field {
                name: "language".into(),
                json_name: "language".into(),
                number: 12,
                label: "Optional".into(),
                r#type: "String".into(),
            }))
            .is_empty()
        );
    }

    #[test]
    fn a_removed_field_is_breaking_and_says_how_to_version_it() {
        let out = with(|s| chunk(s).fields.retain(|f| f.name != "text"));
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("breaking change in sdk.v1.DocumentChunk (still at version 1): field text (4) was removed. A breaking change needs a new version"), "{}", out[0]);
        assert!(out[0].contains("upcaster"), "{}", out[0]);
    }

    #[test]
    fn renumbered_retyped_and_renamed_fields_are_breaking() {
        let out = with(|s| {
            let c = chunk(s);
            c.fields
                .iter_mut()
                .find(|f| f.name == "text")
                .unwrap()
                .number = 40;
            c.fields
                .iter_mut()
                .find(|f| f.name == "chunk_index")
                .unwrap()
                .r#type = "Int64".into();
            let f = c
                .fields
                .iter_mut()
                .find(|f| f.name == "token_count")
                .unwrap();
            f.name = "tokens".into();
            f.json_name = "tokens".into();
        });
        let text = out.join("\n");
        assert!(
            text.contains("field text was renumbered from 4 to 40"),
            "{text}"
        );
        assert!(
            text.contains(
                "field chunk_index (3) changed type from Optional Uint32 to Optional Int64"
            ),
            "{text}"
        );
        assert!(
            text.contains("field token_count (10) was renamed to tokens"),
            "{text}"
        );
    }

    #[test]
    fn reusing_a_reserved_number_is_breaking() {
        let out = with(|s| {
            s.messages
                .get_mut("sdk.v1.StatusUpdate")
                .unwrap()
                .fields
                .push(Field {
                    name: "percent".into(),
                    json_name: "percent".into(),
                    number: 4,
                    label: "Optional".into(),
                    r#type: "Uint32".into(),
                });
        });
        assert!(
            out.join("\n")
                .contains("field percent reuses reserved number 4"),
            "{out:?}"
        );
    }

    #[test]
    fn a_removed_enum_value_is_breaking() {
        let out = with(|s| {
            s.enums
                .get_mut("sdk.v1.TaskStatus")
                .unwrap()
                .remove("TASK_STATUS_CANCELLED");
        });
        assert_eq!(
            out,
            vec![
                "enum value sdk.v1.TaskStatus.TASK_STATUS_CANCELLED was removed or renamed (JSON carries enum names)"
            ]
        );
    }

    #[test]
    fn a_breaking_change_with_a_version_bump_is_accepted() {
        let out = with(|s| {
            let c = chunk(s);
            c.fields.retain(|f| f.name != "text");
            c.version += 1;
        });
        assert!(out.is_empty(), "{out:?}");
    }
}
