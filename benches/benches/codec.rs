//! sdk-codec next to the raw library call on the same value, in the same run.
//!
//! For every `sdk.v1` type and every format: `raw` is the bare `serde_json`,
//! `rmp_serde` or `prost` call; `sdk` is `Codec::encode` / `Codec::decode` (content
//! type parsing, size limits, schema check, validation). Embeddings are also measured
//! against a plain copy of the same f32 bytes.
//!
//! Run: `cargo bench -p sdk-benches --bench codec`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use sdk_codec::v1::*;
use sdk_codec::{Codec, Encoded, Format, Payload, samples};

trait Raw: Payload + prost::Message + Default + Clone {}
impl<T: Payload + prost::Message + Default + Clone> Raw for T {}

/// The raw call into a caller's buffer (appends to `buf`).
fn raw_encode_into<T: Raw>(value: &T, format: Format, buf: &mut Vec<u8>) {
    match format {
        Format::Json => serde_json::to_writer(&mut *buf, value).unwrap(),
        Format::MessagePack => rmp_serde::encode::write_named(buf, value).unwrap(),
        _ => value.encode(buf).unwrap(),
    }
}

/// The raw call as most code writes it: a fresh `Vec` that grows from empty.
fn raw_to_vec<T: Raw>(value: &T, format: Format) -> Vec<u8> {
    match format {
        Format::Json => serde_json::to_vec(value).unwrap(),
        Format::MessagePack => rmp_serde::to_vec_named(value).unwrap(),
        _ => value.encode_to_vec(),
    }
}

fn raw_decode<T: Raw>(bytes: &Bytes, format: Format) -> T {
    match format {
        Format::Json => serde_json::from_slice(bytes).unwrap(),
        Format::MessagePack => rmp_serde::from_slice(bytes).unwrap(),
        _ => T::decode(bytes.clone()).unwrap(),
    }
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    g.sample_size(30);
}

/// 64 different `AgentMessage`s: ids, content from 8 to ~1000 bytes, 0 to 7
/// metadata entries, every role, with and without reply-to. Encoding cycles through
/// them, so a buffer sized from the previous encoding is often wrong, as in real
/// traffic.
fn varied_agent_messages() -> Vec<AgentMessage> {
    let words = "vector search recall latency embedding chunk rerank summarise ";
    (0..64usize)
        .map(|i| {
            let mut m = samples::agent_message();
            m.message_id = format!("m-{i:04}-{}", nuid::next());
            m.content = words.repeat(17)[..8 + (i * 131) % 1000].to_owned();
            m.role = i32::try_from(i % 4).unwrap();
            m.reply_to = if i % 3 == 0 {
                format!("_INBOX.acme.{i}")
            } else {
                String::new()
            };
            m.metadata = (0..i % 8)
                .map(|k| (format!("key-{k}"), format!("value-{}", k * i)))
                .collect();
            m
        })
        .collect()
}

/// Encode and decode of `values` (cycled through, one per iteration) in every format:
/// `raw` is the bare call with the SDK's buffer policy (capacity = the previous
/// encoding's size), `raw to_vec` a fresh `Vec` grown from empty; in the `-reuse`
/// groups, `raw` reuses one `Vec` (`clear()`) and `sdk` is `Codec::encode_into` with
/// one reused `BytesMut`: the same policy on both sides.
fn bench_values<T: Raw>(c: &mut Criterion, name: &str, values: &[T]) {
    let n = values.len();
    for format in Format::ALL {
        let codec = Codec::builder()
            .format(format)
            .compression(None)
            .build()
            .unwrap();
        let encoded: Vec<_> = values.iter().map(|v| codec.encode(v).unwrap()).collect();

        let mut g = c.benchmark_group(format!("encode/{name}/{}", format.name()));
        configure(&mut g);
        g.bench_function("raw", |b| {
            let (mut i, mut last) = (0, 256);
            b.iter(|| {
                i = (i + 1) % n;
                // Protobuf: the exact size, as `encode_to_vec` and the sdk do.
                let cap = if format == Format::Protobuf {
                    prost::Message::encoded_len(&values[i])
                } else {
                    last
                };
                let mut buf = Vec::with_capacity(cap);
                raw_encode_into(black_box(&values[i]), format, &mut buf);
                last = buf.len().max(64);
                Bytes::from(buf)
            })
        });
        g.bench_function("raw to_vec", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % n;
                raw_to_vec(black_box(&values[i]), format)
            })
        });
        g.bench_function("sdk", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % n;
                codec.encode(black_box(&values[i])).unwrap()
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode-reuse/{name}/{}", format.name()));
        configure(&mut g);
        g.bench_function("raw", |b| {
            let (mut i, mut buf) = (0, Vec::new());
            b.iter(|| {
                i = (i + 1) % n;
                buf.clear();
                raw_encode_into(black_box(&values[i]), format, &mut buf);
                black_box(buf.len())
            })
        });
        g.bench_function("sdk", |b| {
            let (mut i, mut buf) = (0, BytesMut::new());
            b.iter(|| {
                i = (i + 1) % n;
                let e = codec
                    .encode_into(black_box(&values[i]), format, &mut buf)
                    .unwrap();
                black_box(e.bytes.len())
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decode/{name}/{}", format.name()));
        configure(&mut g);
        g.bench_function("raw", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % n;
                raw_decode::<T>(black_box(&encoded[i].bytes), format)
            })
        });
        // A receiver borrows its `PayloadMeta` from the message's headers; building it
        // from `Encoded` formats the schema id, which is the sender's work, not decode's.
        let metas: Vec<_> = encoded.iter().map(Encoded::meta).collect();
        g.bench_function("sdk", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % n;
                codec
                    .decode::<T>(black_box(encoded[i].bytes.clone()), &metas[i])
                    .unwrap()
            })
        });
        g.finish();
    }
}

fn all_types(c: &mut Criterion) {
    bench_values(c, "AgentMessage-x64", &varied_agent_messages());
    bench_values(c, "AgentMessage", &[samples::agent_message()]);
    bench_values(c, "AgentTask", &[samples::agent_task()]);
    bench_values(c, "TaskResult", &[samples::task_result()]);
    bench_values(c, "EventMessage", &[samples::event_message()]);
    bench_values(c, "Document", &[samples::document()]);
    bench_values(c, "DocumentChunk-1536", &[samples::document_chunk(1536)]);
    bench_values(c, "StatusUpdate", &[samples::status_update()]);
    bench_values(c, "ErrorInfo", &[samples::error_info()]);
}

fn validation_cost(c: &mut Criterion) {
    validation_cost_of(c, "AgentMessage", samples::agent_message());
    validation_cost_of(c, "DocumentChunk-1536", samples::document_chunk(1536));
}

fn validation_cost_of<T: Raw>(c: &mut Criterion, name: &str, value: T) {
    let mut g = c.benchmark_group(format!("decode/{name}/msgpack/validation"));
    configure(&mut g);
    for on in [true, false] {
        let codec = Codec::builder()
            .format(Format::MessagePack)
            .validate(on)
            .build()
            .unwrap();
        let encoded = codec.encode(&value).unwrap();
        let meta = encoded.meta();
        g.bench_function(
            if on {
                "sdk validate on"
            } else {
                "sdk validate off"
            },
            |b| {
                b.iter(|| {
                    codec
                        .decode::<T>(black_box(encoded.bytes.clone()), &meta)
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

fn embedding_vs_memcpy(c: &mut Criterion) {
    let chunk = samples::document_chunk(1536);
    let raw_f32: Vec<u8> = chunk
        .embedding
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    let mut g = c.benchmark_group("embedding-1536");
    configure(&mut g);
    g.bench_function("memcpy (alloc + copy 6144 bytes)", |b| {
        b.iter(|| black_box(&raw_f32[..]).to_vec())
    });
    for format in [Format::MessagePack, Format::Protobuf] {
        let codec = Codec::builder()
            .format(format)
            .compression(None)
            .build()
            .unwrap();
        let encoded = codec.encode(&chunk).unwrap();
        let meta = encoded.meta();
        g.bench_function(
            format!(
                "memcpy of the encoded {} chunk (alloc + copy {} bytes)",
                format.name(),
                encoded.bytes.len()
            ),
            |b| b.iter(|| black_box(&encoded.bytes[..]).to_vec()),
        );
        g.bench_function(format!("sdk encode {}", format.name()), |b| {
            b.iter(|| codec.encode(black_box(&chunk)).unwrap())
        });
        g.bench_function(format!("sdk decode {}", format.name()), |b| {
            b.iter(|| {
                codec
                    .decode::<DocumentChunk>(black_box(encoded.bytes.clone()), &meta)
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn compression(c: &mut Criterion) {
    let mut doc = samples::document();
    doc.text = "Approximate nearest neighbour search trades recall for speed. ".repeat(300);
    let mut g = c.benchmark_group("compression/Document-18KiB/msgpack");
    configure(&mut g);
    for (label, compression) in [
        ("none", None),
        (
            "zstd-1",
            Some(sdk_codec::Compression {
                threshold: 0,
                level: 1,
            }),
        ),
        (
            "zstd-3",
            Some(sdk_codec::Compression {
                threshold: 0,
                level: 3,
            }),
        ),
    ] {
        let codec = Codec::builder()
            .format(Format::MessagePack)
            .compression(compression)
            .build()
            .unwrap();
        let encoded = codec.encode(&doc).unwrap();
        let meta = encoded.meta();
        eprintln!("compression {label}: {} bytes", encoded.bytes.len());
        g.bench_function(format!("encode {label}"), |b| {
            b.iter(|| codec.encode(black_box(&doc)).unwrap())
        });
        g.bench_function(format!("decode {label}"), |b| {
            b.iter(|| {
                codec
                    .decode::<Document>(black_box(encoded.bytes.clone()), &meta)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    all_types,
    validation_cost,
    embedding_vs_memcpy,
    compression
);
criterion_main!(benches);
