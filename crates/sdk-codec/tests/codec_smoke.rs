//! Smoke test: one value round-trips through every serde format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sdk_codec::{Codec, CodecError, Format};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    id: String,
    tags: Vec<String>,
    score: f64,
}

#[test]
fn a_value_round_trips_in_json_and_msgpack() {
    let note = Note {
        id: "n-1".into(),
        tags: vec!["a".into(), "b".into()],
        score: 0.5,
    };
    for format in [Format::Json, Format::MessagePack] {
        let codec = Codec::builder().format(format).build();
        let encoded = codec.encode(&note).unwrap();
        assert_eq!(encoded.content_type, format.content_type());
        let back: Note = codec.decode(&encoded.bytes, encoded.format).unwrap();
        assert_eq!(back, note, "{format}");
    }
}

#[test]
fn a_wrong_field_type_names_the_field() {
    let codec = Codec::default();
    let err = codec
        .decode::<Note>(br#"{"id":"x","tags":["a",3],"score":1}"#, Format::Json)
        .unwrap_err();
    match err {
        CodecError::Data { path, .. } => assert_eq!(path, "tags[1]"),
        other => panic!("expected a data error, got {other:?}"),
    }
}
