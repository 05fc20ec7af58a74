//! A registry of upcasters: functions that turn version N of a schema into N+1.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{CodecError, Format, Payload};

type AnyValue = Box<dyn Any + Send>;
type DecodeFn = dyn Fn(Bytes, Format) -> Result<AnyValue, CodecError> + Send + Sync;
type ConvertFn = dyn Fn(AnyValue) -> Result<AnyValue, CodecError> + Send + Sync;

struct Step {
    decode: Box<DecodeFn>,
    convert: Box<ConvertFn>,
    to_version: u32,
}

/// Upcasters by (schema name, version they read).
#[derive(Clone, Default)]
pub(crate) struct Upcasters {
    steps: HashMap<(String, u32), Arc<Step>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<String> = self
            .steps
            .iter()
            .map(|((name, from), step)| format!("{name} v{from}->v{}", step.to_version))
            .collect();
        keys.sort();
        f.debug_list().entries(keys).finish()
    }
}

impl Upcasters {
    /// Registers `convert` from `Old` to `New`. Both must carry a schema with the same
    /// name; otherwise the step is refused.
    pub(crate) fn register<Old: Payload, New: Payload>(
        &mut self,
        convert: fn(Old) -> New,
    ) -> Result<(), String> {
        let (Some(old), Some(new)) = (Old::SCHEMA, New::SCHEMA) else {
            return Err("both types need a schema".into());
        };
        if old.name() != new.name() || new.version() <= old.version() {
            return Err(format!(
                "an upcaster must go from a version to a later one of the same schema, \
                 not from {old} to {new}"
            ));
        }
        let step = Step {
            decode: Box::new(|bytes, format| {
                crate::codec::decode_format::<Old>(bytes, format).map(|v| Box::new(v) as AnyValue)
            }),
            convert: Box::new(move |value: AnyValue| {
                let old = value.downcast::<Old>().map_err(|_| CodecError::Encode {
                    format: "upcast",
                    message: format!("upcaster chain broke at {}", std::any::type_name::<Old>()),
                })?;
                Ok(Box::new(convert(*old)) as AnyValue)
            }),
            to_version: new.version(),
        };
        self.steps
            .insert((old.name().to_owned(), old.version()), Arc::new(step));
        Ok(())
    }

    /// Decodes a payload written at `from` and upcasts it to `T`'s version.
    pub(crate) fn upcast<T: Payload>(
        &self,
        name: &str,
        from: u32,
        bytes: Bytes,
        format: Format,
    ) -> Result<T, CodecError> {
        let target = T::SCHEMA.map(|s| s.version()).unwrap_or(0);
        let missing = |at: u32| CodecError::UnknownSchemaVersion {
            schema: name.to_owned(),
            version: from,
            reason: format!("no upcaster from v{at} toward v{target} is registered"),
        };
        let first = self
            .steps
            .get(&(name.to_owned(), from))
            .ok_or_else(|| missing(from))?;
        let mut value = (first.decode)(bytes, format)?;
        let mut step = first.as_ref();
        loop {
            value = (step.convert)(value)?;
            if step.to_version >= target {
                break;
            }
            step = self
                .steps
                .get(&(name.to_owned(), step.to_version))
                .map(Arc::as_ref)
                .ok_or_else(|| missing(step.to_version))?;
        }
        value
            .downcast::<T>()
            .map(|v| *v)
            .map_err(|_| CodecError::UnknownSchemaVersion {
                schema: name.to_owned(),
                version: from,
                reason: format!("the upcasters do not end at {}", std::any::type_name::<T>()),
            })
    }
}
