//! Sampling: the standard rules, plus a different rule per component.

use std::collections::BTreeMap;

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingResult, ShouldSample};

use crate::Sampling;

/// The span attribute that names the component a span belongs to.
pub const COMPONENT_KEY: &str = "sdk.component";

pub(crate) fn to_sdk(s: &Sampling) -> Sampler {
    match s {
        Sampling::AlwaysOn => Sampler::AlwaysOn,
        Sampling::AlwaysOff => Sampler::AlwaysOff,
        Sampling::Ratio(r) => Sampler::TraceIdRatioBased(*r),
        Sampling::ParentBased(inner) => Sampler::ParentBased(Box::new(to_sdk(inner))),
    }
}

/// Chooses the rule by the span's `sdk.component` attribute; the default otherwise.
#[derive(Debug, Clone)]
pub(crate) struct ComponentSampler {
    default: Sampler,
    rules: BTreeMap<String, Sampler>,
}

impl ComponentSampler {
    pub(crate) fn new(default: &Sampling, rules: &BTreeMap<String, Sampling>) -> ComponentSampler {
        ComponentSampler {
            default: to_sdk(default),
            rules: rules.iter().map(|(k, v)| (k.clone(), to_sdk(v))).collect(),
        }
    }
}

impl ShouldSample for ComponentSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let sampler = if self.rules.is_empty() {
            &self.default
        } else {
            attributes
                .iter()
                .find(|kv| kv.key.as_str() == COMPONENT_KEY)
                .and_then(|kv| self.rules.get(kv.value.as_str().as_ref()))
                .unwrap_or(&self.default)
        };
        sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}
