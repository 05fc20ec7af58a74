//! Every `sdk.v1` type in every format, and what each format looks like on the wire.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use sdk_codec::v1::*;
use sdk_codec::{Codec, Format, Payload};

fn round_trip<T: Payload + PartialEq + std::fmt::Debug>(value: &T) {
    for format in Format::ALL {
        let codec = Codec::builder().format(format).build().unwrap();
        let encoded = codec.encode(value).unwrap();
        assert_eq!(encoded.content_type, format.content_type());
        assert_eq!(encoded.schema, T::SCHEMA);
        let back: T = codec
            .decode(encoded.bytes.clone(), &encoded.meta())
            .unwrap();
        assert_eq!(&back, value, "{format}");
    }
}

#[test]
fn every_type_round_trips_in_every_format() {
    round_trip(&sdk_codec::samples::agent_message());
    round_trip(&sdk_codec::samples::agent_task());
    round_trip(&sdk_codec::samples::task_result());
    round_trip(&sdk_codec::samples::event_message());
    round_trip(&sdk_codec::samples::document());
    round_trip(&sdk_codec::samples::document_chunk(1536));
    round_trip(&sdk_codec::samples::status_update());
    round_trip(&sdk_codec::samples::error_info());
}

#[test]
fn json_follows_the_proto3_json_mapping() {
    let codec = Codec::builder().format(Format::Json).build().unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &codec
            .encode(&sdk_codec::samples::task_result())
            .unwrap()
            .bytes,
    )
    .unwrap();
    // lowerCamelCase names, enums by name, uint64 as a string, RFC 3339 timestamps,
    // Struct as a plain object.
    assert_eq!(json["taskId"], "t-1");
    assert_eq!(json["status"], "TASK_STATUS_SUCCEEDED");
    assert_eq!(json["durationMs"], "18446744073709551000");
    assert_eq!(json["completedAt"], "2024-05-01T12:00:12.500Z");
    assert_eq!(json["output"]["summary"], "three papers");
    assert_eq!(json["usage"]["totalTokens"], 1500);
    assert!(
        json.get("error").is_none(),
        "unset messages are omitted: {json}"
    );
}

#[test]
fn json_readers_accept_original_field_names_and_enum_numbers() {
    // What protobuf's own JSON printers may emit with preserving_proto_field_name.
    let text = br#"{"task_id":"t-9","agent_id":"a","status":4,"error":{"code":"x","message":"y"},"duration_ms":12}"#;
    let result: TaskResult = Codec::default()
        .decode(
            Bytes::from_static(text),
            &sdk_codec::PayloadMeta::new("application/json"),
        )
        .unwrap();
    assert_eq!(result.task_id, "t-9");
    assert_eq!(result.status, TaskStatus::Failed as i32);
    assert_eq!(result.duration_ms, 12);
}

#[test]
fn msgpack_writes_maps_with_field_names_and_embeddings_as_bin() {
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let chunk = sdk_codec::samples::document_chunk(4);
    let bytes = codec.encode(&chunk).unwrap().bytes;
    // A map (fixmap 0x8N or map16 0xde), never an array.
    assert!(
        bytes[0] & 0xf0 == 0x80 || bytes[0] == 0xde,
        "first byte {:#x}",
        bytes[0]
    );
    let value: rmpv::Value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let map = value.as_map().unwrap();
    let embedding = map
        .iter()
        .find(|(k, _)| k.as_str() == Some("embedding"))
        .map(|(_, v)| v)
        .unwrap();
    let expected: Vec<u8> = chunk
        .embedding
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(
        embedding.as_slice(),
        Some(&expected[..]),
        "bin of little-endian f32"
    );
    // JSON keeps an array of numbers.
    let json: serde_json::Value =
        serde_json::from_slice(&Codec::default().encode(&chunk).unwrap().bytes).unwrap();
    assert_eq!(json["embedding"].as_array().unwrap().len(), 4);
}

#[test]
fn an_older_msgpack_reader_ignores_a_field_it_does_not_know() {
    // A reader built before `metadata` existed on StatusUpdate.
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct OldStatus {
        component: String,
        instance_id: String,
    }
    impl Payload for OldStatus {}
    let mut status = sdk_codec::samples::status_update();
    status.metadata.insert("new".into(), "field".into());
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let encoded = codec.encode(&status).unwrap();
    let old: OldStatus = codec
        .decode(
            encoded.bytes,
            &sdk_codec::PayloadMeta::new("application/msgpack"),
        )
        .unwrap();
    assert_eq!(old.instance_id, "summarizer-1");
}

#[test]
fn protobuf_embeddings_are_packed_floats() {
    let chunk = sdk_codec::samples::document_chunk(3);
    let codec = Codec::builder().format(Format::Protobuf).build().unwrap();
    let bytes = codec.encode(&chunk).unwrap().bytes;
    // Field 5, wire type 2 (length-delimited), 12 bytes, then the raw f32s.
    let mut expected = vec![(5 << 3) | 2, 12];
    expected.extend(chunk.embedding.iter().flat_map(|f| f.to_le_bytes()));
    assert!(
        bytes
            .windows(expected.len())
            .any(|w| w == expected.as_slice()),
        "packed floats not found in {bytes:?}"
    );
}

#[test]
fn user_serde_types_work_with_json_and_msgpack_but_not_protobuf() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Note {
        text: String,
        tags: Vec<String>,
    }
    impl Payload for Note {}
    let note = Note {
        text: "hi".into(),
        tags: vec!["a".into()],
    };
    for format in [Format::Json, Format::MessagePack] {
        let codec = Codec::builder().format(format).build().unwrap();
        let encoded = codec.encode(&note).unwrap();
        assert_eq!(encoded.schema, None);
        let back: Note = codec
            .decode(encoded.bytes.clone(), &encoded.meta())
            .unwrap();
        assert_eq!(back, note);
    }
    let err = Codec::builder()
        .format(Format::Protobuf)
        .build()
        .unwrap()
        .encode(&note)
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("Note has no protobuf schema; use JSON or MessagePack for it"),
        "{err}"
    );
}

#[test]
fn large_payloads_are_compressed_above_the_threshold() {
    let codec = Codec::builder()
        .format(Format::Json)
        .compression(Some(sdk_codec::Compression {
            threshold: 1024,
            level: 3,
        }))
        .build()
        .unwrap();
    let small = codec.encode(&sdk_codec::samples::agent_message()).unwrap();
    assert_eq!(small.content_encoding, None);
    let mut doc = sdk_codec::samples::document();
    doc.text = "lorem ipsum dolor sit amet ".repeat(200);
    let big = codec.encode(&doc).unwrap();
    assert_eq!(big.content_encoding, Some("zstd"));
    assert!(big.bytes.len() < doc.text.len() / 4);
    let back: Document = codec.decode(big.bytes.clone(), &big.meta()).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn encode_into_reuses_the_callers_buffer() {
    let codec = Codec::builder().compression(None).build().unwrap();
    let mut buf = bytes::BytesMut::with_capacity(4096);
    let first = codec
        .encode_into(
            &sdk_codec::samples::agent_message(),
            Format::MessagePack,
            &mut buf,
        )
        .unwrap();
    let second = codec
        .encode_into(
            &sdk_codec::samples::agent_message(),
            Format::MessagePack,
            &mut buf,
        )
        .unwrap();
    assert_eq!(first.bytes, second.bytes);
    assert!(buf.capacity() > 0, "spare capacity stays for the next call");
    let back: AgentMessage = codec.decode(second.bytes.clone(), &second.meta()).unwrap();
    assert_eq!(back, sdk_codec::samples::agent_message());
}
