//! Generates the `sdk.v1` types from `proto/` without a system `protoc`.
//!
//! protox compiles the `.proto` files into a descriptor set; prost-build turns that into
//! Rust. serde attributes are derived from the descriptors, field by field, so that the
//! serde representation is the proto3 JSON mapping (lowerCamelCase names that also
//! accept the original names, 64-bit integers as strings, enums by name, well-known
//! types in their JSON form) and embeddings can take the compact MessagePack form.

use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "sdk/v1/agent.proto",
        "sdk/v1/document.proto",
        "sdk/v1/error.proto",
        "sdk/v1/event.proto",
        "sdk/v1/status.proto",
        "sdk/v1/task.proto",
    ];
    println!("cargo:rerun-if-changed={}", root.display());
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut bytes = Vec::new();
    prost::Message::encode(&fds, &mut bytes)?;
    std::fs::write(out.join("sdk_v1_descriptor.bin"), bytes)?;

    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    config.enable_type_names();
    for file in &fds.file {
        if file.package() != "sdk.v1" {
            continue;
        }
        for message in &file.message_type {
            let full = format!(".sdk.v1.{}", message.name());
            config.message_attribute(
                &full,
                "#[derive(serde::Serialize, serde::Deserialize)]\n#[serde(default, rename_all = \"camelCase\")]",
            );
            for field in &message.field {
                if let Some(attr) = field_attribute(field) {
                    config.field_attribute(format!("{full}.{}", field.name()), attr);
                }
            }
        }
    }
    config.compile_fds(fds)?;
    Ok(())
}

/// The serde attribute that puts one field in its proto3 JSON form.
fn field_attribute(field: &prost_types::FieldDescriptorProto) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if field.name().contains('_') {
        parts.push(format!("alias = {:?}", field.name()));
    }
    let repeated = field.label() == Label::Repeated;
    match (field.r#type(), field.type_name()) {
        (Type::Int64 | Type::Sint64 | Type::Sfixed64, _) if !repeated => {
            parts.push("with = \"crate::wire::int64\"".into());
        }
        (Type::Uint64 | Type::Fixed64, _) if !repeated => {
            parts.push("with = \"crate::wire::uint64\"".into());
        }
        (Type::Enum, name) if !repeated => {
            let rust = name.rsplit('.').next().unwrap_or(name);
            parts.push(format!(
                "serialize_with = \"crate::wire::enum_name::serialize::<{rust}, _>\", \
                 deserialize_with = \"crate::wire::enum_name::deserialize::<{rust}, _>\""
            ));
        }
        (Type::Message, ".google.protobuf.Timestamp") => {
            parts.push("with = \"crate::wire::timestamp\"".into());
            parts.push("skip_serializing_if = \"Option::is_none\"".into());
        }
        (Type::Message, ".google.protobuf.Struct") => {
            parts.push("with = \"crate::wire::structure\"".into());
            parts.push("skip_serializing_if = \"Option::is_none\"".into());
        }
        (Type::Message, _) if !repeated => {
            parts.push("skip_serializing_if = \"Option::is_none\"".into());
        }
        (Type::Float, _) if repeated => {
            parts.push("with = \"crate::wire::embedding\"".into());
        }
        _ => {}
    }
    (!parts.is_empty()).then(|| format!("#[serde({})]", parts.join(", ")))
}
