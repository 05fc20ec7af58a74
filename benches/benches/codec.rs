//! Codec encode/decode next to the raw serde_json and rmp-serde calls.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use sdk_codec::{Codec, Format};
use serde::{Deserialize, Serialize};
use std::hint::black_box;

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    id: String,
    sender: String,
    content: String,
    tags: Vec<String>,
}

fn note() -> Note {
    Note {
        id: "m-0001".into(),
        sender: "planner".into(),
        content: "find three papers on vector search and summarise them".into(),
        tags: vec!["rag".into(), "search".into()],
    }
}

fn encode(c: &mut Criterion) {
    let value = note();
    let mut g = c.benchmark_group("encode/note");
    g.bench_function("raw serde_json::to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&value)).unwrap())
    });
    let json = Codec::builder().format(Format::Json).build();
    g.bench_function("codec json", |b| {
        b.iter(|| json.encode(black_box(&value)).unwrap())
    });
    g.bench_function("raw rmp_serde::to_vec_named", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&value)).unwrap())
    });
    let msgpack = Codec::builder().format(Format::MessagePack).build();
    g.bench_function("codec msgpack", |b| {
        b.iter(|| msgpack.encode(black_box(&value)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
