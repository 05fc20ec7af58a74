//! The compatibility check of `proto/` against its committed snapshot,
//! `proto/snapshot.json`: the rules of `buf breaking` at WIRE_JSON level (removed,
//! renumbered, retyped or renamed fields, reused reserved numbers and names, removed
//! or renumbered enum values), where a breaking change is accepted only with a new
//! schema version.
//!
//! ```
//! use sdk_codec::compat::{Snapshot, breaking};
//! let now = Snapshot::current()?;
//! assert!(now.messages.contains_key("sdk.v1.AgentTask"));
//! assert!(breaking(&now, &now).is_empty());
//! # Ok::<(), sdk_codec::CodecError>(())
//! ```

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::FileDescriptorSet;
use serde::{Deserialize, Serialize};

use crate::v1::{
    AgentMessage, AgentTask, Document, DocumentChunk, ErrorInfo, EventMessage, StatusUpdate,
    TaskResult,
};
use crate::{CodecError, FILE_DESCRIPTOR_SET, Payload, SchemaId};

/// One field of a message, as the snapshot records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The proto name, e.g. `task_id`.
    pub name: String,
    /// The JSON name, e.g. `taskId`.
    pub json_name: String,
    /// The field number.
    pub number: i32,
    /// `Optional` or `Repeated`.
    pub label: String,
    /// A scalar (`String`, `Uint32`, ...), a full message or enum name, or
    /// `map<K, V>`.
    pub r#type: String,
}

/// One message: its schema version and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MessageShape {
    /// The schema version the Rust side declares (`Payload::SCHEMA`); 0 for nested
    /// helper messages.
    pub version: u32,
    /// The fields, in declaration order.
    pub fields: Vec<Field>,
    /// Reserved field numbers.
    pub reserved_numbers: Vec<i32>,
    /// Reserved field names.
    pub reserved_names: Vec<String>,
}

/// The shapes of every message and enum of package `sdk.v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    /// Messages by full name (`sdk.v1.AgentTask`).
    pub messages: BTreeMap<String, MessageShape>,
    /// Enums by full name, each value name with its number.
    pub enums: BTreeMap<String, BTreeMap<String, i32>>,
}

/// The schemas of the eight `sdk.v1` payload types, with the versions this build reads
/// and writes.
pub fn schemas() -> Vec<SchemaId> {
    [
        AgentMessage::SCHEMA,
        AgentTask::SCHEMA,
        TaskResult::SCHEMA,
        EventMessage::SCHEMA,
        Document::SCHEMA,
        DocumentChunk::SCHEMA,
        StatusUpdate::SCHEMA,
        ErrorInfo::SCHEMA,
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Snapshot {
    /// The snapshot of the descriptors compiled into this build
    /// ([`FILE_DESCRIPTOR_SET`]), with this build's schema versions.
    ///
    /// # Errors
    /// [`CodecError::Syntax`] if the compiled descriptors cannot be read (they always
    /// can, unless the build is broken).
    pub fn current() -> Result<Snapshot, CodecError> {
        Snapshot::from_descriptor_set(FILE_DESCRIPTOR_SET)
    }

    /// The snapshot of an encoded `google.protobuf.FileDescriptorSet`, such as one
    /// compiled from a checkout's `proto/` directory, with this build's schema
    /// versions (see [`schemas`]).
    ///
    /// # Errors
    /// [`CodecError::Syntax`] when `bytes` is not a descriptor set.
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Snapshot, CodecError> {
        let fds = FileDescriptorSet::decode(bytes).map_err(|e| CodecError::Syntax {
            format: "protobuf",
            position: "FileDescriptorSet".into(),
            message: e.to_string(),
        })?;
        let versions: BTreeMap<String, u32> = schemas()
            .into_iter()
            .map(|s| (s.name().to_owned(), s.version()))
            .collect();
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
                let fields = m.field.iter().map(|f| field(m, f)).collect();
                let mut reserved_numbers = Vec::new();
                for r in &m.reserved_range {
                    reserved_numbers.extend(r.start()..r.end());
                }
                snap.messages.insert(
                    full.clone(),
                    MessageShape {
                        version: versions.get(&full).copied().unwrap_or(0),
                        fields,
                        reserved_numbers,
                        reserved_names: m.reserved_name.clone(),
                    },
                );
            }
        }
        Ok(snap)
    }
}

fn field(m: &prost_types::DescriptorProto, f: &prost_types::FieldDescriptorProto) -> Field {
    // Map entries are nested messages; name them by their key and value types.
    let ty = if f.type_name().is_empty() {
        format!("{:?}", f.r#type())
    } else {
        let nested = m.nested_type.iter().find(|n| {
            f.type_name().ends_with(&format!(".{}", n.name()))
                && n.options.as_ref().is_some_and(|o| o.map_entry())
        });
        match nested.map(|entry| (entry.field.first(), entry.field.get(1))) {
            Some((Some(key), Some(value))) => format!(
                "map<{:?}, {:?}{}>",
                key.r#type(),
                value.r#type(),
                value.type_name()
            ),
            _ => f.type_name().trim_start_matches('.').to_owned(),
        }
    };
    Field {
        name: f.name().to_owned(),
        json_name: f.json_name().to_owned(),
        number: f.number(),
        label: format!("{:?}", f.label()),
        r#type: ty,
    }
}

/// The breaking changes from `old` to `new`, each a message that says how to fix it;
/// empty when `new` is compatible. A message whose fields broke is accepted when its
/// version went up.
pub fn breaking(old: &Snapshot, new: &Snapshot) -> Vec<String> {
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
