//! The failures users will hit, with their error text pinned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use sdk_codec::v1::*;
use sdk_codec::{Codec, CodecError, Format, Payload, PayloadMeta};

fn decode<T: Payload>(codec: &Codec, bytes: &[u8], meta: PayloadMeta<'_>) -> CodecError {
    match codec.decode::<T>(Bytes::copy_from_slice(bytes), &meta) {
        Ok(_) => panic!("decoding {bytes:?} should fail"),
        Err(e) => e,
    }
}

const JSON: &str = "application/json";
const MSGPACK: &str = "application/msgpack";
const PROTOBUF: &str = "application/protobuf";

#[test]
fn an_unsupported_content_type_is_named() {
    let err = decode::<AgentMessage>(&Codec::default(), b"{}", PayloadMeta::new("text/xml"));
    assert!(matches!(err, CodecError::UnsupportedContentType { .. }));
    assert_eq!(
        err.to_string(),
        "unsupported content type \"text/xml\": expected application/json, application/msgpack or application/protobuf"
    );
}

#[test]
fn a_missing_content_type_says_how_to_set_one() {
    for missing in ["", "  ", "; charset=utf-8"] {
        let err = decode::<AgentMessage>(&Codec::default(), b"{}", PayloadMeta::new(missing));
        assert!(
            matches!(&err, CodecError::UnsupportedContentType { content_type } if content_type == missing),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the message has no content type: set the ce-datacontenttype header (or \
             Content-Type) to application/json, application/msgpack or application/protobuf",
            "{missing:?}"
        );
    }
}

#[test]
fn json_syntax_errors_give_line_and_column() {
    let err = decode::<AgentMessage>(
        &Codec::default(),
        b"{\n \"messageId\": \"m\",\n oops}",
        PayloadMeta::new(JSON),
    );
    assert_eq!(
        err.to_string(),
        "syntax error in json payload at line 3 column 2: key must be a string"
    );
}

#[test]
fn json_data_errors_give_the_field_path() {
    let err = decode::<AgentTask>(
        &Codec::default(),
        br#"{"taskId":"t","agentId":"a","taskType":"x","metadata":{"k":7}}"#,
        PayloadMeta::new(JSON),
    );
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "metadata.k"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "data error in json payload at `metadata.k`: invalid type: integer `7`, expected a string"
    );
    let err = decode::<TaskResult>(
        &Codec::default(),
        br#"{"taskId":"t","status":"TASK_STATUS_DONE"}"#,
        PayloadMeta::new(JSON),
    );
    assert_eq!(
        err.to_string(),
        "data error in json payload at `status`: unknown sdk.v1.TaskStatus value \"TASK_STATUS_DONE\""
    );
    let err = decode::<AgentTask>(
        &Codec::default(),
        br#"{"taskId":"t","createdAt":"yesterday"}"#,
        PayloadMeta::new(JSON),
    );
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "createdAt"),
        "{err}"
    );
}

#[test]
fn trailing_bytes_are_refused_in_json_and_msgpack() {
    let err = decode::<ErrorInfo>(
        &Codec::default(),
        br#"{"code":"c","message":"m"} {}"#,
        PayloadMeta::new(JSON),
    );
    assert_eq!(
        err.to_string(),
        "2 trailing bytes after a complete json value"
    );
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .build()
        .unwrap();
    let mut bytes = codec
        .encode(&sdk_codec::samples::error_info())
        .unwrap()
        .bytes
        .to_vec();
    bytes.extend_from_slice(&[0xc0, 0xc0, 0xc0]);
    let err = decode::<ErrorInfo>(&codec, &bytes, PayloadMeta::new(MSGPACK));
    assert_eq!(
        err.to_string(),
        "3 trailing bytes after a complete msgpack value"
    );
}

#[test]
fn msgpack_errors_say_where() {
    let codec = Codec::default();
    // A map announcing one entry, then nothing.
    let err = decode::<ErrorInfo>(&codec, &[0x81], PayloadMeta::new(MSGPACK));
    assert!(
        matches!(&err, CodecError::Syntax { position, .. } if position == "byte 1"),
        "{err}"
    );
    // {"retryable": "yes"}: a string where a bool belongs.
    let mut bytes = vec![0x81, 0xa9];
    bytes.extend_from_slice(b"retryable");
    bytes.extend_from_slice(&[0xa3, b'y', b'e', b's']);
    let err = decode::<ErrorInfo>(&codec, &bytes, PayloadMeta::new(MSGPACK));
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "retryable"),
        "{err}"
    );
}

#[test]
fn a_reserved_msgpack_marker_is_a_syntax_error_at_its_byte() {
    let codec = Codec::default();
    // 0xc1 is the one byte MessagePack reserves: no value starts with it.
    let err = decode::<ErrorInfo>(&codec, &[0xc1], PayloadMeta::new(MSGPACK));
    assert!(
        matches!(&err, CodecError::Syntax { format: "msgpack", position, .. } if position == "byte 0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "syntax error in msgpack payload at byte 0: the payload is not valid MessagePack: \
         0xc1 is a reserved marker that starts no value; check that the sender encodes \
         MessagePack, or declare the content type it does encode"
    );
    // {"code": <0xc1>}: the byte and the field it was in.
    let mut bytes = vec![0x81, 0xa4];
    bytes.extend_from_slice(b"code");
    bytes.push(0xc1);
    let err = decode::<ErrorInfo>(&codec, &bytes, PayloadMeta::new(MSGPACK));
    assert_eq!(
        err.to_string(),
        "syntax error in msgpack payload at byte 6 (in `code`): the payload is not valid \
         MessagePack: 0xc1 is a reserved marker that starts no value; check that the sender \
         encodes MessagePack, or declare the content type it does encode"
    );
}

#[test]
fn a_truncated_msgpack_payload_says_so() {
    // A map announcing one entry, then nothing.
    let err = decode::<ErrorInfo>(&Codec::default(), &[0x81], PayloadMeta::new(MSGPACK));
    assert_eq!(
        err.to_string(),
        "syntax error in msgpack payload at byte 1: the payload ends in the middle of a \
         value; it was cut short (check the sender and any size limit on the way)"
    );
}

#[test]
fn a_data_error_at_the_root_names_the_root() {
    // A bare integer where a message (a map) belongs.
    let err = decode::<ErrorInfo>(&Codec::default(), &[0x05], PayloadMeta::new(MSGPACK));
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "."),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "data error in msgpack payload at (root): invalid type: integer `5`, expected struct ErrorInfo"
    );
    let err = decode::<ErrorInfo>(&Codec::default(), b"5", PayloadMeta::new(JSON));
    assert_eq!(
        err.to_string(),
        "data error in json payload at (root): invalid type: integer `5`, expected struct ErrorInfo"
    );
    // A field of the wrong MessagePack type: {"retryable": "yes"}.
    let mut bytes = vec![0x81, 0xa9];
    bytes.extend_from_slice(b"retryable");
    bytes.extend_from_slice(&[0xa3, b'y', b'e', b's']);
    let err = decode::<ErrorInfo>(&Codec::default(), &bytes, PayloadMeta::new(MSGPACK));
    assert_eq!(
        err.to_string(),
        "data error in msgpack payload at `retryable`: invalid type: a string (marker 0xa3), \
         which this field cannot hold"
    );
    // {"code": 5}: serde's own wording, now as the data error it is, with its path.
    let err = decode::<ErrorInfo>(
        &Codec::default(),
        &[0x81, 0xa4, b'c', b'o', b'd', b'e', 0x05],
        PayloadMeta::new(MSGPACK),
    );
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "code"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "data error in msgpack payload at `code`: invalid type: integer `5`, expected a string"
    );
}

#[test]
fn protobuf_errors_name_the_field() {
    // Field 1 (messageId) as a length-delimited string of 10 bytes, but only 2 follow.
    let err = decode::<AgentMessage>(
        &Codec::default(),
        &[0x0a, 10, b'a', b'b'],
        PayloadMeta::new(PROTOBUF),
    );
    assert!(matches!(err, CodecError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("AgentMessage.message_id"), "{err}");
    // Invalid UTF-8 in a string field is a data error.
    let err = decode::<AgentMessage>(
        &Codec::default(),
        &[0x0a, 2, 0xff, 0xfe],
        PayloadMeta::new(PROTOBUF),
    );
    assert!(
        matches!(&err, CodecError::Data { path, .. } if path == "AgentMessage.message_id"),
        "{err:?}"
    );
}

#[test]
fn validation_errors_carry_the_field_path_and_reason() {
    let codec = Codec::default();
    let mut chunk = sdk_codec::samples::document_chunk(4);
    chunk.embedding_dimension = 8;
    let encoded = Codec::builder()
        .validate(false)
        .build()
        .unwrap()
        .encode(&chunk)
        .unwrap();
    let err = codec
        .decode::<DocumentChunk>(encoded.bytes.clone(), &encoded.meta())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "validation failed for sdk.v1.DocumentChunk at `embedding`: has 4 values but embeddingDimension is 8"
    );
    // With validation off the same payload decodes.
    let lenient = Codec::builder().validate(false).build().unwrap();
    assert!(
        lenient
            .decode::<DocumentChunk>(encoded.bytes.clone(), &encoded.meta())
            .is_ok()
    );

    let mut status = sdk_codec::samples::status_update();
    status.progress = 1.5;
    let encoded = lenient.encode(&status).unwrap();
    let err = codec
        .decode::<StatusUpdate>(encoded.bytes.clone(), &encoded.meta())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "validation failed for sdk.v1.StatusUpdate at `progress`: must be within 0..=1, got 1.5"
    );

    let err = decode::<AgentMessage>(
        &codec,
        br#"{"messageId":" ","senderId":"a","receiverId":"b"}"#,
        PayloadMeta::new(JSON),
    );
    assert_eq!(
        err.to_string(),
        "validation failed for sdk.v1.AgentMessage at `messageId`: is required and must not be empty"
    );

    let mut result = sdk_codec::samples::task_result();
    result.status = TaskStatus::Failed as i32;
    let encoded = lenient.encode(&result).unwrap();
    let err = codec
        .decode::<TaskResult>(encoded.bytes.clone(), &encoded.meta())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "validation failed for sdk.v1.TaskResult at `error`: is required when status is TASK_STATUS_FAILED"
    );
}

#[test]
fn oversized_payloads_are_refused_with_both_sizes() {
    let codec = Codec::builder()
        .max_encoded_size(64)
        .compression(None)
        .build()
        .unwrap();
    let err = codec
        .encode(&sdk_codec::samples::agent_message())
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::TooLarge {
                what: "encoded",
                limit: 64,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("encoded payload is "), "{err}");
    assert!(
        err.to_string()
            .ends_with(" bytes, over the limit of 64 bytes"),
        "{err}"
    );
    let err = decode::<AgentMessage>(&codec, &[b' '; 65], PayloadMeta::new(JSON));
    assert_eq!(
        err.to_string(),
        "encoded payload is 65 bytes, over the limit of 64 bytes"
    );
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compress to a few KiB. Level 1 keeps the window at 512 KiB,
    // within what a 1 MiB limit allows. The frame declares its 64 MiB: refused on
    // that, before anything is decompressed.
    let zeros = vec![0u8; 64 << 20];
    let bomb = zstd::bulk::compress(&zeros, 1).unwrap();
    assert!(bomb.len() < 64 * 1024);
    let codec = Codec::builder().max_decoded_size(1 << 20).build().unwrap();
    let err = decode::<Document>(
        &codec,
        &bomb,
        PayloadMeta::new(JSON).with_encoding(Some("zstd")),
    );
    assert_eq!(
        err.to_string(),
        format!(
            "decompressed payload is {} bytes, over the limit of {} bytes",
            64 << 20,
            1 << 20
        )
    );
    // Streamed, the frame does not declare its size: decoding starts, and stops one
    // byte past the limit.
    let mut streamed = Vec::new();
    let mut encoder = zstd::stream::write::Encoder::new(&mut streamed, 1).unwrap();
    std::io::Write::write_all(&mut encoder, &zeros).unwrap();
    encoder.finish().unwrap();
    let err = decode::<Document>(
        &codec,
        &streamed,
        PayloadMeta::new(JSON).with_encoding(Some("zstd")),
    );
    assert_eq!(
        err.to_string(),
        format!(
            "decompressed payload is {} bytes, over the limit of {} bytes",
            (1 << 20) + 1,
            1 << 20
        )
    );
    // At level 19 the frame asks for an 8 MiB window: refused before decoding.
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    let err = decode::<Document>(
        &codec,
        &bomb,
        PayloadMeta::new(JSON).with_encoding(Some("zstd")),
    );
    assert!(
        matches!(
            err,
            CodecError::WindowTooLarge {
                window: 8388608,
                limit: 1048576
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "zstd frame declares a 8388608-byte window, over the limit of 1048576 bytes set by \
         the decompressed-size limit; compress with a smaller window (a lower level, or a \
         known content size) or raise max_decoded_size"
    );
}

#[test]
fn corrupt_compression_and_unknown_encodings_are_errors() {
    let err = decode::<Document>(
        &Codec::default(),
        b"not zstd at all",
        PayloadMeta::new(JSON).with_encoding(Some("zstd")),
    );
    assert!(matches!(err, CodecError::Decompression { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("zstd decompression failed: "),
        "{err}"
    );
    let err = decode::<Document>(
        &Codec::default(),
        b"{}",
        PayloadMeta::new(JSON).with_encoding(Some("br")),
    );
    assert_eq!(
        err.to_string(),
        "unsupported content encoding \"br\": expected zstd or none"
    );
}

#[test]
fn nan_written_as_json_is_refused_when_read_back() {
    let mut result = sdk_codec::samples::task_result();
    result.cost_usd = f64::NAN;
    // serde_json writes NaN as null: the encode succeeds. Reading it back, null is not
    // a number for `costUsd`, and the decode fails naming the field (a serde error,
    // before validation), instead of taking it for 0.
    let codec = Codec::default();
    let encoded = codec.encode(&result).unwrap();
    let err = codec
        .decode::<TaskResult>(encoded.bytes.clone(), &encoded.meta())
        .unwrap_err();
    assert!(err.to_string().contains("costUsd"), "{err}");
}

#[test]
fn nan_in_messagepack_and_protobuf_is_refused_by_validation_on_decode() {
    let mut result = sdk_codec::samples::task_result();
    result.cost_usd = f64::NAN;
    for format in [Format::MessagePack, Format::Protobuf] {
        let codec = Codec::builder().format(format).build().unwrap();
        // These formats carry NaN as it is; validation is what refuses it.
        let encoded = codec.encode(&result).unwrap();
        let err = codec
            .decode::<TaskResult>(encoded.bytes.clone(), &encoded.meta())
            .unwrap_err();
        assert!(
            matches!(err, CodecError::Validation { .. }) && err.to_string().contains("costUsd"),
            "{format:?}: {err}"
        );
    }
}

/// Nested arrays a thousand deep, where a message has a free-form field
/// (`AgentTask.parameters`): each level is a level of recursion in the decoder. On a
/// 2 MiB stack (a tokio worker's), the decode must end with an error, not overflow
/// the stack and abort the process.
#[test]
fn deeply_nested_input_is_refused_within_a_worker_stack() {
    const DEPTH: usize = 5000;
    let json = format!(
        r#"{{"taskId":"t","agentId":"a","taskType":"x","parameters":{{"p":{}{}}}}}"#,
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    // MessagePack: a map of 4 whose "parameters" holds {"p": [[[...]]]}.
    let mut msgpack = vec![0x84];
    for (k, v) in [("taskId", "t"), ("agentId", "a"), ("taskType", "x")] {
        msgpack.push(0xa0 | k.len() as u8);
        msgpack.extend_from_slice(k.as_bytes());
        msgpack.push(0xa0 | v.len() as u8);
        msgpack.extend_from_slice(v.as_bytes());
    }
    msgpack.push(0xaa);
    msgpack.extend_from_slice(b"parameters");
    msgpack.extend_from_slice(&[0x81, 0xa1, b'p']);
    msgpack.extend(std::iter::repeat_n(0x91, DEPTH));
    msgpack.push(0xc0);
    let outcome = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let codec = Codec::default();
            let json = codec.decode::<AgentTask>(Bytes::from(json), &PayloadMeta::new(JSON));
            let msgpack =
                codec.decode::<AgentTask>(Bytes::from(msgpack), &PayloadMeta::new(MSGPACK));
            (json.map(|_| ()), msgpack.map(|_| ()))
        })
        .unwrap()
        .join()
        .unwrap();
    let json = outcome.0.unwrap_err().to_string();
    assert!(json.contains("recursion limit exceeded"), "JSON: {json}");
    let msgpack = outcome.1.unwrap_err().to_string();
    assert!(
        msgpack.contains("nested too deeply"),
        "MessagePack: {msgpack}"
    );
}
