//! The pages of `docs/` as doctests: every `rust` block in them compiles, and runs
//! unless it is marked `no_run` because it needs a live server or collector. Blocks in
//! other languages are fenced with their language (`text`, `sh`, `conf`, `python`), so
//! rustdoc leaves them alone.

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

#[doc = include_str!("../../../docs/decisions/nats.md")]
pub struct NatsDecisions;

#[doc = include_str!("../../../docs/decisions/jetstream.md")]
pub struct JetStreamDecisions;

#[doc = include_str!("../../../docs/decisions/codec.md")]
pub struct CodecDecisions;

#[doc = include_str!("../../../docs/decisions/otel.md")]
pub struct OtelDecisions;

#[doc = include_str!("../../../docs/decisions/0001-workspace-layout.md")]
pub struct WorkspaceLayoutDecision;

#[doc = include_str!("../../../docs/decisions/0002-real-servers-in-tests.md")]
pub struct RealServersDecision;

#[doc = include_str!("../../../docs/integration.md")]
pub struct IntegrationGuide;

#[doc = include_str!("../../../docs/getting-started.md")]
pub struct GettingStarted;

#[doc = include_str!("../../../docs/production.md")]
pub struct ProductionGuide;

#[doc = include_str!("../../../docs/migration.md")]
pub struct MigrationGuide;

#[doc = include_str!("../../../docs/troubleshooting.md")]
pub struct Troubleshooting;

#[doc = include_str!("../../../docs/requirements-index.md")]
pub struct RequirementsIndex;
