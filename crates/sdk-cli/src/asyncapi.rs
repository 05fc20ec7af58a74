//! `sdk asyncapi`: an AsyncAPI 3.0 document of the bus. Channels are the subject
//! families of the wire contract (docs/wire-contract.md); messages carry the
//! CloudEvents headers as their headers schema and, per `sdk.v1` type, a JSON Schema
//! of the proto3 JSON form derived from the compiled proto descriptors; operations
//! include the request-reply services.

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};

use crate::cli::{AsyncApiArgs, DocFormat, Global};
use crate::connect;
use crate::error::CliError;
use crate::out;
use crate::payload;

/// `sdk asyncapi`.
pub(crate) fn run(global: &Global, args: AsyncApiArgs) -> Result<(), CliError> {
    let url = args
        .server_url
        .clone()
        .unwrap_or_else(|| connect::server_url(global));
    let doc = document(&url)?;
    let text = match args.format {
        DocFormat::Json => serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::new(format!("cannot write JSON: {e}")))?,
        DocFormat::Yaml => crate::yaml::to_string(&doc),
    };
    match &args.output {
        Some(path) => std::fs::write(path, format!("{text}\n")).map_err(|e| {
            CliError::usage(format!("cannot write {}: {e}", path.display()))
                .hint("check the directory exists and is writable")
        }),
        None => out::line(&text),
    }
}

/// The comments of the descriptors, by path (`[4, i]` a message, `[4, i, 2, j]` its
/// field, `[5, i]` an enum).
fn comments(file: &prost_types::FileDescriptorProto) -> BTreeMap<Vec<i32>, String> {
    let mut out = BTreeMap::new();
    if let Some(info) = &file.source_code_info {
        for location in &info.location {
            if let Some(text) = &location.leading_comments {
                let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if !text.is_empty() {
                    out.insert(location.path.clone(), text);
                }
            }
        }
    }
    out
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The JSON Schema of one field's value (without `repeated`).
fn value_schema(field: &FieldDescriptorProto, message: &DescriptorProto) -> Value {
    let type_name = field.type_name().trim_start_matches('.');
    match field.r#type() {
        Type::Double | Type::Float => json!({ "type": "number" }),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Type::Uint32 | Type::Fixed32 => {
            json!({ "type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64 })
        }
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => json!({
            "type": ["string", "integer"],
            "pattern": "^-?[0-9]+$",
            "description": "64-bit integer; written as a decimal string (proto3 JSON)",
        }),
        Type::Uint64 | Type::Fixed64 => json!({
            "type": ["string", "integer"],
            "pattern": "^[0-9]+$",
            "description": "64-bit unsigned integer; written as a decimal string (proto3 JSON)",
        }),
        Type::Bool => json!({ "type": "boolean" }),
        Type::String => json!({ "type": "string" }),
        Type::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
        Type::Enum => schema_ref(type_name),
        Type::Message | Type::Group => match type_name {
            "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
            "google.protobuf.Struct" => json!({ "type": "object" }),
            "google.protobuf.Value" => json!({}),
            "google.protobuf.ListValue" => json!({ "type": "array" }),
            other => {
                // A map field's entry type is nested in its message.
                let entry = message.nested_type.iter().find(|n| {
                    other.ends_with(&format!(".{}", n.name()))
                        && n.options.as_ref().is_some_and(|o| o.map_entry())
                });
                match entry.and_then(|e| e.field.get(1)) {
                    Some(value) => json!({
                        "type": "object",
                        "additionalProperties": value_schema(value, message),
                    }),
                    None => schema_ref(other),
                }
            }
        },
    }
}

fn is_map(field: &FieldDescriptorProto, message: &DescriptorProto) -> bool {
    field.r#type() == Type::Message
        && message.nested_type.iter().any(|n| {
            field.type_name().ends_with(&format!(".{}", n.name()))
                && n.options.as_ref().is_some_and(|o| o.map_entry())
        })
}

/// The fields every message of a type must fill (the codec's validation rules), so a
/// peer sees them in the schema too.
fn required(name: &str) -> &'static [&'static str] {
    match name {
        "sdk.v1.AgentMessage" => &["messageId", "senderId", "receiverId"],
        "sdk.v1.AgentTask" => &["taskId", "agentId", "taskType"],
        "sdk.v1.TaskResult" => &["taskId"],
        "sdk.v1.EventMessage" => &["eventId", "eventType", "source"],
        "sdk.v1.Document" => &["documentId"],
        "sdk.v1.DocumentChunk" => &["chunkId", "documentId"],
        "sdk.v1.StatusUpdate" => &["component", "instanceId"],
        "sdk.v1.ErrorInfo" => &["code", "message"],
        _ => &[],
    }
}

/// The JSON Schemas of every message and enum of package `sdk.v1`, by full name.
pub(crate) fn payload_schemas() -> Result<Map<String, Value>, CliError> {
    let fds = FileDescriptorSet::decode(sdk_codec::FILE_DESCRIPTOR_SET)
        .map_err(|e| CliError::new(format!("the compiled schemas cannot be read: {e}")))?;
    let versions: BTreeMap<String, u32> = sdk_codec::compat::schemas()
        .into_iter()
        .map(|s| (s.name().to_owned(), s.version()))
        .collect();
    let mut schemas = Map::new();
    for file in fds.file.iter().filter(|f| f.package() == "sdk.v1") {
        let notes = comments(file);
        for (i, e) in file.enum_type.iter().enumerate() {
            let name = format!("sdk.v1.{}", e.name());
            let mut schema = json!({
                "type": "string",
                "enum": e.value.iter().map(|v| v.name()).collect::<Vec<_>>(),
            });
            if let Some(note) = notes.get(&vec![5, i32::try_from(i).unwrap_or(0)]) {
                schema["description"] = json!(note);
            }
            schemas.insert(name, schema);
        }
        for (i, m) in file.message_type.iter().enumerate() {
            let index = i32::try_from(i).unwrap_or(0);
            let name = format!("sdk.v1.{}", m.name());
            let mut properties = Map::new();
            for (j, f) in m.field.iter().enumerate() {
                let mut schema = if f.label() == Label::Repeated && !is_map(f, m) {
                    json!({ "type": "array", "items": value_schema(f, m) })
                } else {
                    value_schema(f, m)
                };
                let path = vec![4, index, 2, i32::try_from(j).unwrap_or(0)];
                let mut note = notes.get(&path).cloned().unwrap_or_default();
                if f.json_name() != f.name() {
                    let alias = format!("Readers also accept the proto name {}.", f.name());
                    note = if note.is_empty() {
                        alias
                    } else {
                        format!("{note} {alias}")
                    };
                }
                if !note.is_empty() {
                    // A reference takes no siblings in older drafts: wrap it.
                    if schema.get("$ref").is_some() {
                        schema = json!({ "allOf": [schema] });
                    }
                    schema["description"] = json!(note);
                }
                if required(&name).contains(&f.json_name()) {
                    schema["minLength"] = json!(1);
                }
                properties.insert(f.json_name().to_owned(), schema);
            }
            let mut schema = json!({
                "type": "object",
                "properties": properties,
            });
            let needed = required(&name);
            if !needed.is_empty() {
                schema["required"] = json!(needed);
            }
            let mut description = notes.get(&vec![4, index]).cloned().unwrap_or_default();
            if let Some(v) = versions.get(&name) {
                description = format!(
                    "{description} The proto3 JSON form; ce-dataschema urn:sdk:schema:{name}:v{v}."
                )
                .trim()
                .to_owned();
            }
            if !description.is_empty() {
                schema["description"] = json!(description);
            }
            schemas.insert(name, schema);
        }
    }
    Ok(schemas)
}

/// The CloudEvents headers every SDK message carries (docs/wire-contract.md §2.1).
fn cloudevents_headers() -> Value {
    json!({
        "type": "object",
        "description": "CloudEvents 1.0 attributes in binary mode (ce-* headers), trace context, and the payload's format. Values are percent-encoded where CloudEvents requires it; readers match names in any case.",
        "required": ["ce-specversion", "ce-id", "ce-source", "ce-type", "ce-tenantid"],
        "properties": {
            "ce-specversion": { "type": "string", "pattern": "^1\\.", "description": "1.0 when written; any 1.x is accepted." },
            "ce-id": { "type": "string", "minLength": 1, "description": "Unique per message; a 22-character NUID unless the sender sets its own." },
            "ce-time": { "type": "string", "format": "date-time", "description": "RFC 3339 in UTC." },
            "ce-source": { "type": "string", "minLength": 1, "description": "/<tenant>/<component>/<instance>" },
            "ce-type": { "type": "string", "minLength": 1, "description": "A dotted type, such as sdk.task.assigned." },
            "ce-tenantid": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$", "description": "Must equal the subject's tenant; otherwise the message is refused with 403." },
            "ce-datacontenttype": { "type": "string", "enum": ["application/json", "application/msgpack", "application/protobuf"] },
            "ce-dataschema": { "type": "string", "pattern": "^urn:sdk:schema:[A-Za-z0-9._]+:v[1-9][0-9]*$" },
            "ce-subject": { "type": "string" },
            "ce-correlationid": { "type": "string", "description": "The conversation; replies and messages sent while handling keep it." },
            "ce-causationid": { "type": "string", "description": "The ce-id of the message that caused this one." },
            "Content-Encoding": { "type": "string", "enum": ["zstd"], "description": "Set when the payload was compressed after encoding." },
            "traceparent": { "type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", "description": "W3C trace context." },
            "tracestate": { "type": "string" },
            "baggage": { "type": "string", "description": "W3C baggage; holds sdk.tenant.id=<tenant>." },
            "accept": { "type": "string", "description": "On a request: the formats the caller reads, as an HTTP Accept header." },
            "Nats-Msg-Id": { "type": "string", "description": "On a JetStream publish: <tenant>:<ce-id>." },
        },
    })
}

/// The headers of one type's messages: the CloudEvents headers with its schema id.
fn typed_headers(schema_id: &str) -> Value {
    json!({
        "type": "object",
        "allOf": [schema_ref("CloudEventsHeaders")],
        "properties": { "ce-dataschema": { "const": schema_id } },
    })
}

fn example_headers(schema_id: &str, ce_type: &str) -> Value {
    json!({
        "ce-specversion": "1.0",
        "ce-id": "Q2dXn6Yl1uEzBbJRGx8tKp",
        "ce-time": "2025-06-02T09:30:00.123Z",
        "ce-source": "/acme/agent/planner",
        "ce-type": ce_type,
        "ce-tenantid": "acme",
        "ce-datacontenttype": "application/json",
        "ce-dataschema": schema_id,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "baggage": "sdk.tenant.id=acme",
    })
}

/// The whole document.
pub(crate) fn document(server_url: &str) -> Result<Value, CliError> {
    let mut schemas = payload_schemas()?;
    schemas.insert("CloudEventsHeaders".into(), cloudevents_headers());
    schemas.insert(
        "ServiceErrorHeaders".into(),
        json!({
            "type": "object",
            "description": "An error reply: the NATS service API's headers. When the request could be read, the ce-* attributes of an sdk.error event too.",
            "required": ["Nats-Service-Error", "Nats-Service-Error-Code"],
            "properties": {
                "Nats-Service-Error": { "type": "string", "description": "The text, at most 1024 bytes, without control characters." },
                "Nats-Service-Error-Code": { "type": "string", "enum": ["400", "403", "404", "408", "413", "500", "503"] },
                "ce-type": { "const": "sdk.error" },
                "ce-tenantid": { "type": "string" },
                "ce-correlationid": { "type": "string" },
                "ce-causationid": { "type": "string" },
            },
        }),
    );
    schemas.insert(
        "DeadLetterHeaders".into(),
        json!({
            "type": "object",
            "description": "The original message's headers (without those the server acts on) plus the facts of its failure.",
            "allOf": [schema_ref("CloudEventsHeaders")],
            "required": ["sdk-dlq-reason", "sdk-dlq-subject"],
            "properties": {
                "sdk-dlq-reason": { "type": "string" },
                "sdk-dlq-subject": { "type": "string", "description": "The subject it was first published on." },
                "sdk-dlq-deliveries": { "type": "string", "pattern": "^[0-9]+$" },
                "sdk-dlq-consumer": { "type": "string" },
                "sdk-dlq-time": { "type": "string", "format": "date-time" },
                "sdk-dlq-msg-id": { "type": "string" },
                "sdk-dlq-stream": { "type": "string" },
                "sdk-dlq-stream-sequence": { "type": "string", "pattern": "^[0-9]+$" },
                "sdk-dlq-payload-omitted": { "type": "string", "pattern": "^[0-9]+$" },
            },
        }),
    );
    schemas.insert(
        "MicroServiceAnswer".into(),
        json!({
            "type": "object",
            "description": "A NATS micro service's answer to $SRV.PING, $SRV.INFO or $SRV.STATS.",
            "required": ["name", "id", "version", "type"],
            "properties": {
                "name": { "type": "string" },
                "id": { "type": "string" },
                "version": { "type": "string" },
                "type": { "type": "string", "pattern": "^io\\.nats\\.micro\\.v1\\." },
                "metadata": { "type": "object", "additionalProperties": { "type": "string" } },
                "endpoints": { "type": "array" },
            },
        }),
    );

    let mut messages = Map::new();
    let types = payload::all();
    for info in &types {
        let Some(schema) = &info.schema else { continue };
        let id = schema.to_string();
        messages.insert(
            info.name.to_owned(),
            json!({
                "name": info.name,
                "title": format!("{} v{}", schema.name(), schema.version()),
                "summary": format!("A {} in any of the three formats; JSON shown.", info.name),
                "contentType": "application/json",
                "headers": typed_headers(&id),
                "payload": schema_ref(schema.name()),
                "examples": [{
                    "name": format!("{}Example", info.name),
                    "headers": example_headers(&id, "sdk.example"),
                    "payload": (info.example)(),
                }],
            }),
        );
    }
    messages.insert(
        "ErrorReply".into(),
        json!({
            "name": "ErrorReply",
            "title": "Error reply",
            "summary": "A failed request: the code and text in Nats-Service-Error headers, the text again as the body.",
            "contentType": "text/plain",
            "headers": schema_ref("ServiceErrorHeaders"),
            "payload": { "type": "string" },
        }),
    );
    messages.insert(
        "DeadLetter".into(),
        json!({
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A message a consumer gave up on, with its original payload.",
            "headers": schema_ref("DeadLetterHeaders"),
            "payload": {},
        }),
    );
    messages.insert(
        "MicroServiceRequest".into(),
        json!({
            "name": "MicroServiceRequest",
            "title": "Micro service discovery request",
            "summary": "An empty request to $SRV.<verb>[.<name>[.<id>]].",
            "payload": { "type": "string", "maxLength": 0 },
        }),
    );
    messages.insert(
        "MicroServiceAnswer".into(),
        json!({
            "name": "MicroServiceAnswer",
            "title": "Micro service discovery answer",
            "contentType": "application/json",
            "payload": schema_ref("MicroServiceAnswer"),
        }),
    );

    let typed: Vec<&str> = types.iter().map(|t| t.name).collect();
    let param = |description: &str| json!({ "description": description });
    let tenant = param("The tenant: 1 to 64 of [a-z0-9_-], starting with a letter or digit.");
    let channel_messages = |names: &[&str]| -> Value {
        Value::Object(
            names
                .iter()
                .map(|n| {
                    (
                        (*n).to_owned(),
                        json!({ "$ref": format!("#/components/messages/{n}") }),
                    )
                })
                .collect(),
        )
    };
    let mut reply_names = typed.clone();
    reply_names.push("ErrorReply");
    let channels = json!({
        "agentInbox": {
            "address": "sdk.{tenant}.agent.{agentId}.inbox",
            "title": "Agent inbox",
            "description": "Messages and requests to one agent (core NATS).",
            "parameters": { "tenant": tenant, "agentId": param("The agent's id, one token of [A-Za-z0-9_-].") },
            "messages": channel_messages(&typed),
        },
        "componentCall": {
            "address": "sdk.{tenant}.{component}.{action}",
            "title": "Component call",
            "description": "A request to a component, such as sdk.acme.rag.query (core NATS request-reply). The component may not be agent, events, workflow, status or dlq; more tokens may follow the action.",
            "parameters": { "tenant": tenant, "component": param("The component."), "action": param("The action.") },
            "messages": channel_messages(&typed),
        },
        "events": {
            "address": "sdk.{tenant}.events.{eventType}",
            "title": "Events",
            "description": "Events, stored by stream SDK_EVENTS (7 days); a dotted event type gives several tokens.",
            "parameters": { "tenant": tenant, "eventType": param("The event type, such as task.completed.") },
            "messages": channel_messages(&typed),
        },
        "workflow": {
            "address": "sdk.{tenant}.workflow.{workflowId}.{event}",
            "title": "Workflow events",
            "description": "One workflow's events, stored by stream SDK_WORKFLOWS (7 days), ordered per workflow.",
            "parameters": { "tenant": tenant, "workflowId": param("The workflow's id."), "event": param("The event, such as step_done.") },
            "messages": channel_messages(&typed),
        },
        "status": {
            "address": "sdk.{tenant}.status.{component}.{instanceId}",
            "title": "Status",
            "description": "Status updates of component instances (core NATS).",
            "parameters": { "tenant": tenant, "component": param("The component."), "instanceId": param("The instance.") },
            "messages": channel_messages(&["StatusUpdate"]),
        },
        "deadLetters": {
            "address": "sdk.{tenant}.dlq.{subject}",
            "title": "Dead letters",
            "description": "What consumers gave up on, stored by stream SDK_DLQ (30 days), under the original subject after the tenant.",
            "parameters": { "tenant": tenant, "subject": param("The original subject after the tenant, e.g. events.task.completed.") },
            "messages": channel_messages(&["DeadLetter"]),
        },
        "replies": {
            "address": "_INBOX.{tenant}.{id}",
            "title": "Replies",
            "description": "Reply inboxes: always an inbox of the request subject's tenant. Services answer nowhere else.",
            "parameters": { "tenant": tenant, "id": param("NUID tokens of the requester.") },
            "messages": channel_messages(&reply_names),
        },
        "echo": {
            "address": "sdk.{tenant}.echo.call",
            "title": "Echo service",
            "description": "`sdk serve echo`: answers each request with its own data, in its format, continuing its trace.",
            "parameters": { "tenant": tenant },
            "messages": channel_messages(&typed),
        },
        "microDiscovery": {
            "address": "$SRV.{verb}",
            "title": "Micro service discovery",
            "description": "NATS micro services answer $SRV.PING, $SRV.INFO and $SRV.STATS (also with .<name> and .<name>.<id>); `sdk micro` collects the answers.",
            "parameters": { "verb": { "enum": ["PING", "INFO", "STATS"], "description": "What to ask." } },
            "messages": channel_messages(&["MicroServiceRequest"]),
        },
        "microAnswers": {
            "address": "_INBOX.{id}",
            "title": "Micro service answers",
            "parameters": { "id": param("The requester's inbox.") },
            "messages": channel_messages(&["MicroServiceAnswer"]),
        },
    });
    let refs = |channel: &str, names: &[&str]| -> Value {
        Value::Array(
            names
                .iter()
                .map(|n| json!({ "$ref": format!("#/channels/{channel}/messages/{n}") }))
                .collect(),
        )
    };
    let op = |action: &str, channel: &str, names: &[&str], summary: &str| -> Value {
        json!({
            "action": action,
            "channel": { "$ref": format!("#/channels/{channel}") },
            "summary": summary,
            "messages": refs(channel, names),
        })
    };
    let with_reply = |mut operation: Value, channel: &str, names: &[&str]| -> Value {
        operation["reply"] = json!({
            "channel": { "$ref": format!("#/channels/{channel}") },
            "messages": refs(channel, names),
        });
        operation
    };
    let operations = json!({
        "sendToAgent": op("send", "agentInbox", &typed, "Send a message or a request to an agent."),
        "receiveInInbox": op("receive", "agentInbox", &typed, "An agent receives its messages."),
        "callComponent": with_reply(
            op("send", "componentCall", &typed, "Call a component and wait for its reply."),
            "replies",
            &reply_names,
        ),
        "serveComponent": with_reply(
            op("receive", "componentCall", &typed, "A service answers calls, in the format the request asked for or used."),
            "replies",
            &reply_names,
        ),
        "publishEvent": op("send", "events", &typed, "Publish an event; JetStream stores it."),
        "consumeEvents": op("receive", "events", &typed, "Consume events, at least once, with retries and dead letters."),
        "publishWorkflowEvent": op("send", "workflow", &typed, "Record a workflow step."),
        "consumeWorkflowEvents": op("receive", "workflow", &typed, "Process a workflow's steps in order."),
        "publishStatus": op("send", "status", &["StatusUpdate"], "Report an instance's status."),
        "watchStatus": op("receive", "status", &["StatusUpdate"], "Watch status updates."),
        "storeDeadLetter": op("send", "deadLetters", &["DeadLetter"], "A consumer stores a message it gave up on."),
        "readDeadLetters": op("receive", "deadLetters", &["DeadLetter"], "List, show and replay dead letters (`sdk dlq`)."),
        "callEcho": with_reply(
            op("send", "echo", &typed, "Call the echo service (`sdk req sdk.<tenant>.echo.call ...`)."),
            "replies",
            &reply_names,
        ),
        "serveEcho": with_reply(
            op("receive", "echo", &typed, "The echo service (`sdk serve echo`), discoverable as NATS micro service sdk-echo."),
            "replies",
            &reply_names,
        ),
        "discoverServices": with_reply(
            op("send", "microDiscovery", &["MicroServiceRequest"], "Find micro services and their stats (`sdk micro ls|info|stats`)."),
            "microAnswers",
            &["MicroServiceAnswer"],
        ),
    });
    let first = server_url.split(',').next().unwrap_or(server_url).trim();
    let host = first
        .split("://")
        .nth(1)
        .unwrap_or(first)
        .rsplit('@')
        .next()
        .unwrap_or(first)
        .trim_end_matches('/');
    Ok(json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agent SDK bus",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The subjects, messages and services of the agent SDK on NATS, as docs/wire-contract.md describes them. Every message is a CloudEvent in binary mode; its data is JSON, MessagePack or Protobuf, named by ce-datacontenttype, and an sdk.v1 type by ce-dataschema. Generated by `sdk asyncapi`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": host,
                "protocol": "nats",
                "description": "A NATS server (2.2 or later, for headers); JetStream for events, workflows and dead letters.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
        },
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use bytes::Bytes;
    use sdk_codec::{Codec, PayloadMeta};

    /// The required fields of the schemas are exactly those the codec insists on:
    /// blanking any of them in the example fails validation.
    #[test]
    fn required_fields_match_the_codec() {
        let codec = Codec::default();
        for info in payload::all() {
            let name = info.full_name();
            let example = (info.example)();
            let meta = PayloadMeta::new("application/json");
            assert!(
                (info.to_json)(&codec, Bytes::from(example.to_string()), &meta).is_ok(),
                "{name}'s example does not decode"
            );
            for field in required(&name) {
                let mut blank = example.clone();
                blank[*field] = json!("");
                assert!(
                    (info.to_json)(&codec, Bytes::from(blank.to_string()), &meta).is_err(),
                    "{name}.{field} is listed as required but the codec accepts it empty"
                );
            }
        }
    }

    #[test]
    fn every_type_has_a_payload_schema() {
        let schemas = payload_schemas().unwrap();
        for info in payload::all() {
            let s = &schemas[&info.full_name()];
            assert_eq!(s["type"], "object");
            assert!(s["properties"].as_object().is_some_and(|p| !p.is_empty()));
        }
        assert_eq!(schemas["sdk.v1.TaskStatus"]["type"], "string");
        assert_eq!(
            schemas["sdk.v1.AgentTask"]["properties"]["createdAt"]["format"],
            "date-time"
        );
    }
}
