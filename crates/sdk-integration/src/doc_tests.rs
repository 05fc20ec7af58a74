//! The guides in `docs/` as doctests: every `rust` block in them compiles, and runs
//! unless it is marked `no_run` (it needs a live server) or `ignore`.

#[doc = include_str!("../../../docs/nats.md")]
pub struct NatsGuide;

#[doc = include_str!("../../../docs/reliability.md")]
pub struct ReliabilityGuide;

#[doc = include_str!("../../../docs/wire-contract.md")]
pub struct WireContract;

#[doc = include_str!("../../../docs/codec.md")]
pub struct CodecGuide;

#[doc = include_str!("../../../docs/otel.md")]
pub struct OtelGuide;

#[doc = include_str!("../../../docs/testing.md")]
pub struct TestingGuide;

#[doc = include_str!("../../../docs/interop.md")]
pub struct InteropGuide;

#[doc = include_str!("../../../docs/benchmarks.md")]
pub struct Benchmarks;

#[doc = include_str!("../../../docs/README.md")]
pub struct DocsIndex;
