//! Property tests: every type round-trips in every format, and no input, however
//! broken, makes any decode path panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use sdk_codec::v1::*;
use sdk_codec::{Codec, Compression, Format, Payload, PayloadMeta};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9 _.-]{1,24}", "\\PC{0,12}"]
}

fn id() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,16}"
}

fn map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-z_]{1,8}", text(), 0..4)
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    proptest::option::of(
        (-62_135_596_800i64..=253_402_300_799, 0i32..1_000_000_000)
            .prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

fn json_object() -> impl Strategy<Value = Option<prost_types::Struct>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-1.0e9f64..1.0e9).prop_map(|f| serde_json::json!(f)),
        text().prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::option::of(proptest::collection::btree_map("[a-z]{1,6}", value, 0..4)).prop_map(|m| {
        m.map(|m| {
            let json = serde_json::json!({"taskId": "t", "agentId": "a", "taskType": "x", "parameters": m});
            serde_json::from_value::<AgentTask>(json).unwrap().parameters.unwrap_or_default()
        })
    })
}

prop_compose! {
    fn agent_message()(message_id in id(), sender_id in id(), receiver_id in id(), conversation_id in text(),
        correlation_id in text(), reply_to in text(), role in 0i32..5, content in text(), content_type in text(),
        metadata in map(), created_at in timestamp()) -> AgentMessage {
        AgentMessage { message_id, sender_id, receiver_id, conversation_id, correlation_id, reply_to, role,
            content, content_type, metadata, created_at }
    }
}

prop_compose! {
    fn agent_task()(task_id in id(), agent_id in id(), task_type in id(), conversation_id in text(),
        correlation_id in text(), parameters in json_object(), priority in any::<i32>(), deadline in timestamp(),
        created_at in timestamp(), attempt in any::<u32>(), metadata in map()) -> AgentTask {
        AgentTask { task_id, agent_id, task_type, conversation_id, correlation_id, parameters, priority,
            deadline, created_at, attempt, metadata }
    }
}

prop_compose! {
    fn error_info()(code in id(), message in id(), retryable in any::<bool>(), details in map(),
        component in text()) -> ErrorInfo {
        ErrorInfo { code, message, retryable, details, component }
    }
}

prop_compose! {
    fn task_result()(task_id in id(), agent_id in text(), ok in any::<bool>(), output in json_object(),
        error in error_info(), prompt in 0u32..1_000_000, completion in 0u32..1_000_000, cost_usd in 0.0f64..100.0,
        model in text(), duration_ms in any::<u64>(), started_at in timestamp(), completed_at in timestamp(),
        metadata in map()) -> TaskResult {
        TaskResult {
            task_id, agent_id,
            status: if ok { TaskStatus::Succeeded as i32 } else { TaskStatus::Failed as i32 },
            output,
            error: (!ok).then_some(error),
            usage: Some(TokenUsage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }),
            cost_usd, model, duration_ms, started_at, completed_at, metadata,
        }
    }
}

prop_compose! {
    fn event_message()(event_id in id(), event_type in id(), source in id(), subject in text(),
        sequence in any::<u64>(), data in json_object(), occurred_at in timestamp(), correlation_id in text(),
        metadata in map()) -> EventMessage {
        EventMessage { event_id, event_type, source, subject, sequence, data, occurred_at, correlation_id, metadata }
    }
}

prop_compose! {
    fn document()(document_id in id(), source_uri in text(), title in text(), mime_type in text(), text in text(),
        metadata in map(), created_at in timestamp(), chunk_count in any::<u32>(), checksum in text()) -> Document {
        Document { document_id, source_uri, title, mime_type, text, metadata, created_at, chunk_count, checksum }
    }
}

prop_compose! {
    fn document_chunk()(chunk_id in id(), document_id in id(), chunk_index in any::<u32>(), text in text(),
        embedding in proptest::collection::vec(-1.0e6f32..1.0e6, 0..64), embedding_model in text(),
        start in 0u32..1000, len in 0u32..1000, token_count in any::<u32>(), metadata in map()) -> DocumentChunk {
        let embedding_dimension = u32::try_from(embedding.len()).unwrap();
        DocumentChunk { chunk_id, document_id, chunk_index, text, embedding, embedding_dimension, embedding_model,
            start_offset: start, end_offset: start + len, token_count, metadata }
    }
}

prop_compose! {
    fn status_update()(component in id(), instance_id in id(), state in 0i32..6, task_id in text(),
        progress in 0.0f32..=1.0, message in text(), updated_at in timestamp(), metadata in map()) -> StatusUpdate {
        StatusUpdate { component, instance_id, state, task_id, progress, message, updated_at, metadata }
    }
}

fn codecs() -> Vec<Codec> {
    Format::ALL
        .into_iter()
        .flat_map(|format| {
            [
                None,
                Some(Compression {
                    threshold: 0,
                    level: 1,
                }),
            ]
            .map(|compression| {
                Codec::builder()
                    .format(format)
                    .compression(compression)
                    .build()
                    .unwrap()
            })
        })
        .collect()
}

fn round_trips<T: Payload + PartialEq + std::fmt::Debug>(value: &T) -> Result<(), TestCaseError> {
    for codec in codecs() {
        let encoded = codec.encode(value).unwrap();
        let back: T = codec
            .decode(encoded.bytes.clone(), &encoded.meta())
            .unwrap();
        prop_assert_eq!(&back, value, "format {}", codec.format());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn agent_messages_round_trip(v in agent_message()) { round_trips(&v)?; }
    #[test]
    fn agent_tasks_round_trip(v in agent_task()) { round_trips(&v)?; }
    #[test]
    fn task_results_round_trip(v in task_result()) { round_trips(&v)?; }
    #[test]
    fn events_round_trip(v in event_message()) { round_trips(&v)?; }
    #[test]
    fn documents_round_trip(v in document()) { round_trips(&v)?; }
    #[test]
    fn chunks_round_trip(v in document_chunk()) { round_trips(&v)?; }
    #[test]
    fn status_updates_round_trip(v in status_update()) { round_trips(&v)?; }
    #[test]
    fn error_infos_round_trip(v in error_info()) { round_trips(&v)?; }
}

/// Decodes `bytes` as every type, in every format, plain and as zstd; only checks
/// that nothing panics.
fn decode_everything(bytes: &[u8]) {
    let codec = Codec::builder().max_decoded_size(1 << 20).build().unwrap();
    for content_type in [
        "application/json",
        "application/msgpack",
        "application/protobuf",
    ] {
        for encoding in [None, Some("zstd")] {
            let meta = PayloadMeta::new(content_type).with_encoding(encoding);
            let b = || Bytes::copy_from_slice(bytes);
            let _ = codec.decode::<AgentMessage>(b(), &meta);
            let _ = codec.decode::<AgentTask>(b(), &meta);
            let _ = codec.decode::<TaskResult>(b(), &meta);
            let _ = codec.decode::<EventMessage>(b(), &meta);
            let _ = codec.decode::<Document>(b(), &meta);
            let _ = codec.decode::<DocumentChunk>(b(), &meta);
            let _ = codec.decode::<StatusUpdate>(b(), &meta);
            let _ = codec.decode::<ErrorInfo>(b(), &meta);
            let v1 = meta
                .clone()
                .with_schema(Some("urn:sdk:schema:sdk.v1.StatusUpdate:v1"));
            let _ = codec.decode::<StatusUpdate>(b(), &v1);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_payloads_never_panic(v in task_result(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        for format in Format::ALL {
            let codec = Codec::builder().format(format).compression(None).build().unwrap();
            let mut bytes = codec.encode(&v).unwrap().bytes.to_vec();
            for (at, value) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *value;
            }
            decode_everything(&bytes);
        }
    }

    /// The same, inside a zstd frame: flipped header bytes (window, content size,
    /// frame and block sizes) and flipped compressed data reach the frame walk and the
    /// decoder.
    #[test]
    fn mutated_zstd_frames_never_panic(v in task_result(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let plain = Codec::builder().compression(None).build().unwrap();
        let encoded = plain.encode(&v).unwrap();
        let mut bytes = zstd::bulk::compress(&encoded.bytes, 3).unwrap();
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        decode_everything(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The block-copy embedding path is wire-compatible with plain prost both ways.
    #[test]
    fn chunk_protobuf_interoperates_with_plain_prost(v in document_chunk()) {
        use prost::Message as _;
        let codec = Codec::builder().format(Format::Protobuf).compression(None).build().unwrap();
        let ours = codec.encode(&v).unwrap();
        prop_assert_eq!(&DocumentChunk::decode(ours.bytes.clone()).unwrap(), &v);
        let theirs = Bytes::from(v.encode_to_vec());
        let back: DocumentChunk = codec.decode(theirs, &ours.meta()).unwrap();
        prop_assert_eq!(&back, &v);
    }
}

#[test]
fn unpacked_embedding_floats_are_read_too() {
    // proto2-style writers may send repeated floats one by one (wire type 5).
    let mut bytes = vec![0x0a, 1, b'c', 0x12, 1, b'd'];
    for f in [1.0f32, -2.5] {
        bytes.push((5 << 3) | 5);
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    let chunk: DocumentChunk = Codec::default()
        .decode(
            Bytes::from(bytes),
            &PayloadMeta::new("application/protobuf"),
        )
        .unwrap();
    assert_eq!(chunk.embedding, vec![1.0, -2.5]);
    assert_eq!(chunk.chunk_id, "c");
}
