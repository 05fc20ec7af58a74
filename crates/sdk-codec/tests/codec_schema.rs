//! Schema identity and evolution: a real v1 -> v2 change of `sdk.v1.StatusUpdate`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sdk_codec::legacy::StatusUpdateV1;
use sdk_codec::v1::{AgentMessage, AgentState, StatusUpdate};
use sdk_codec::{Codec, CodecError, Format, Payload, PayloadMeta, SchemaId};

fn v1_status() -> StatusUpdateV1 {
    StatusUpdateV1 {
        component: "agent".into(),
        instance_id: "summarizer-1".into(),
        state: AgentState::Busy as i32,
        progress_percent: 40,
        task_id: "t-1".into(),
        message: "halfway-ish".into(),
        updated_at: sdk_codec::samples::ts(1_714_564_805, 0),
    }
}

#[test]
fn every_type_names_its_schema_and_version() {
    assert_eq!(
        AgentMessage::SCHEMA.unwrap().to_string(),
        "urn:sdk:schema:sdk.v1.AgentMessage:v1"
    );
    assert_eq!(
        StatusUpdate::SCHEMA.unwrap().to_string(),
        "urn:sdk:schema:sdk.v1.StatusUpdate:v2"
    );
}

#[test]
fn a_v1_status_update_decodes_into_v2_in_every_format() {
    let reader = Codec::default();
    for format in Format::ALL {
        // An old producer: it writes v1 and says so in ce-dataschema.
        let old_writer = Codec::builder().format(format).build().unwrap();
        let encoded = old_writer.encode(&v1_status()).unwrap();
        assert_eq!(
            encoded.schema.as_ref().unwrap().to_string(),
            "urn:sdk:schema:sdk.v1.StatusUpdate:v1"
        );
        let status: StatusUpdate = reader
            .decode(encoded.bytes.clone(), &encoded.meta())
            .unwrap();
        assert!(
            (status.progress - 0.4).abs() < f32::EPSILON,
            "{format}: {status:?}"
        );
        assert_eq!(status.instance_id, "summarizer-1");
        assert_eq!(status.updated_at, sdk_codec::samples::ts(1_714_564_805, 0));
    }
}

#[test]
fn a_newer_version_is_refused_clearly() {
    let codec = Codec::default();
    let encoded = codec.encode(&sdk_codec::samples::status_update()).unwrap();
    let meta = PayloadMeta::new("application/json")
        .with_schema(Some("urn:sdk:schema:sdk.v1.StatusUpdate:v3"));
    let err = codec
        .decode::<StatusUpdate>(encoded.bytes, &meta)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown schema version: sdk.v1.StatusUpdate version 3 (newer than this reader, which reads up to v2; upgrade the reader)"
    );
}

#[test]
fn an_old_version_without_an_upcaster_is_refused_clearly() {
    let codec = Codec::default();
    let encoded = codec.encode(&sdk_codec::samples::agent_message()).unwrap();
    // AgentMessage is at v1; pretend a v2 reader gets v1 with no upcaster: use a
    // user type at v2 of a made-up schema.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Ticket {
        id: String,
    }
    impl Payload for Ticket {
        const SCHEMA: Option<SchemaId> = Some(SchemaId::new("acme.Ticket", 2));
    }
    let meta =
        PayloadMeta::new("application/json").with_schema(Some("urn:sdk:schema:acme.Ticket:v1"));
    let err = codec.decode::<Ticket>(encoded.bytes, &meta).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown schema version: acme.Ticket version 1 (no upcaster from v1 toward v2 is registered)"
    );
}

#[test]
fn a_payload_of_another_schema_is_refused() {
    let codec = Codec::default();
    let encoded = codec.encode(&sdk_codec::samples::agent_message()).unwrap();
    let err = codec
        .decode::<StatusUpdate>(encoded.bytes.clone(), &encoded.meta())
        .unwrap_err();
    assert!(matches!(err, CodecError::SchemaMismatch { .. }));
    assert_eq!(
        err.to_string(),
        "schema mismatch: expected urn:sdk:schema:sdk.v1.StatusUpdate:v2, the payload declares urn:sdk:schema:sdk.v1.AgentMessage:v1"
    );
}

#[test]
fn user_upcasters_chain_across_versions() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct TicketV1 {
        title: String,
    }
    #[derive(serde::Serialize, serde::Deserialize)]
    struct TicketV2 {
        title: String,
        priority: u8,
    }
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct TicketV3 {
        summary: String,
        priority: u8,
    }
    impl Payload for TicketV1 {
        const SCHEMA: Option<SchemaId> = Some(SchemaId::new("acme.Ticket", 1));
    }
    impl Payload for TicketV2 {
        const SCHEMA: Option<SchemaId> = Some(SchemaId::new("acme.Ticket", 2));
    }
    impl Payload for TicketV3 {
        const SCHEMA: Option<SchemaId> = Some(SchemaId::new("acme.Ticket", 3));
    }
    let codec = Codec::builder()
        .format(Format::MessagePack)
        .upcaster(|v1: TicketV1| TicketV2 {
            title: v1.title,
            priority: 3,
        })
        .upcaster(|v2: TicketV2| TicketV3 {
            summary: v2.title,
            priority: v2.priority,
        })
        .build()
        .unwrap();
    let old = codec
        .encode(&TicketV1 {
            title: "printer on fire".into(),
        })
        .unwrap();
    let now: TicketV3 = codec.decode(old.bytes.clone(), &old.meta()).unwrap();
    assert_eq!(
        now,
        TicketV3 {
            summary: "printer on fire".into(),
            priority: 3
        }
    );
}

#[test]
fn an_upcaster_between_different_schemas_is_refused_at_build() {
    let err = Codec::builder()
        .upcaster(|m: AgentMessage| StatusUpdate {
            component: m.sender_id,
            ..Default::default()
        })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("same schema"), "{err}");
}
