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

use bytes::Bytes;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use sdk_codec::v1::*;
use sdk_codec::{Codec, Format, Payload, samples};

trait Raw: Payload + prost::Message + Default {}
impl<T: Payload + prost::Message + Default> Raw for T {}

fn raw_encode<T: Raw>(value: &T, format: Format) -> Vec<u8> {
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

fn bench_type<T: Raw>(c: &mut Criterion, name: &str, value: &T) {
    for format in Format::ALL {
        let codec = Codec::builder()
            .format(format)
            .compression(None)
            .build()
            .unwrap();
        let encoded = codec.encode(value).unwrap();
        let meta = encoded.meta();
        let bytes = encoded.bytes.clone();

        let mut g = c.benchmark_group(format!("encode/{name}/{}", format.name()));
        configure(&mut g);
        g.bench_function("raw", |b| b.iter(|| raw_encode(black_box(value), format)));
        g.bench_function("sdk", |b| {
            b.iter(|| codec.encode(black_box(value)).unwrap())
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decode/{name}/{}", format.name()));
        configure(&mut g);
        g.bench_function("raw", |b| {
            b.iter(|| raw_decode::<T>(black_box(&bytes), format))
        });
        g.bench_function("sdk", |b| {
            b.iter(|| codec.decode::<T>(black_box(bytes.clone()), &meta).unwrap())
        });
        g.finish();
    }
}

fn all_types(c: &mut Criterion) {
    bench_type(c, "AgentMessage", &samples::agent_message());
    bench_type(c, "AgentTask", &samples::agent_task());
    bench_type(c, "TaskResult", &samples::task_result());
    bench_type(c, "EventMessage", &samples::event_message());
    bench_type(c, "Document", &samples::document());
    bench_type(c, "DocumentChunk-1536", &samples::document_chunk(1536));
    bench_type(c, "StatusUpdate", &samples::status_update());
    bench_type(c, "ErrorInfo", &samples::error_info());
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
