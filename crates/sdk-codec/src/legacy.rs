//! Old schema versions that the codec still reads, and their upcasters.
//!
//! `sdk.v1.StatusUpdate` version 1 carried progress as `uint32 progress_percent = 4`
//! (0..100). Version 2 replaced it with `float progress = 6` (0..1). A v1 payload in
//! any format decodes into today's [`crate::v1::StatusUpdate`] through
//! [`status_update_v1_to_v2`], which every codec registers by default.

use bytes::Bytes;

use crate::proto::v1::StatusUpdate;
use crate::{CodecError, Payload, SchemaId, Violation};

/// `sdk.v1.StatusUpdate` as it was at version 1.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatusUpdateV1 {
    /// The component.
    #[prost(string, tag = "1")]
    pub component: String,
    /// The instance that reports.
    #[prost(string, tag = "2")]
    #[serde(alias = "instance_id")]
    pub instance_id: String,
    /// An `sdk.v1.AgentState`.
    #[prost(int32, tag = "3")]
    #[serde(
        serialize_with = "crate::wire::enum_name::serialize::<crate::v1::AgentState, _>",
        deserialize_with = "crate::wire::enum_name::deserialize::<crate::v1::AgentState, _>"
    )]
    pub state: i32,
    /// Progress from 0 to 100.
    #[prost(uint32, tag = "4")]
    #[serde(alias = "progress_percent")]
    pub progress_percent: u32,
    /// The task being reported on.
    #[prost(string, tag = "5")]
    #[serde(alias = "task_id")]
    pub task_id: String,
    /// A short note.
    #[prost(string, tag = "7")]
    pub message: String,
    /// When.
    #[prost(message, optional, tag = "8")]
    #[serde(
        with = "crate::wire::timestamp",
        alias = "updated_at",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at: Option<prost_types::Timestamp>,
}

impl Payload for StatusUpdateV1 {
    const SCHEMA: Option<SchemaId> = Some(SchemaId::new("sdk.v1.StatusUpdate", 1));

    fn encode_protobuf(&self, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        prost::Message::encode(self, buf).map_err(|e| CodecError::Encode {
            format: "protobuf",
            message: e.to_string(),
        })
    }

    fn decode_protobuf(bytes: Bytes) -> Result<Self, CodecError> {
        <StatusUpdateV1 as prost::Message>::decode(bytes).map_err(crate::proto::decode_error)
    }

    fn validate(&self) -> Result<(), Violation> {
        if self.progress_percent > 100 {
            return Err(Violation::new(
                "progressPercent",
                format!("must be within 0..=100, got {}", self.progress_percent),
            ));
        }
        Ok(())
    }
}

/// The upcaster from version 1 to version 2: percent becomes a fraction.
pub fn status_update_v1_to_v2(old: StatusUpdateV1) -> StatusUpdate {
    #[allow(clippy::cast_precision_loss)] // 0..=100 fits an f32 exactly
    let progress = old.progress_percent.min(100) as f32 / 100.0;
    StatusUpdate {
        component: old.component,
        instance_id: old.instance_id,
        state: old.state,
        task_id: old.task_id,
        progress,
        message: old.message,
        updated_at: old.updated_at,
        metadata: Default::default(),
    }
}
