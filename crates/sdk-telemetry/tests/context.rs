//! Context across spawned tasks, and propagation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use opentelemetry::Context;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};

fn provider() -> opentelemetry_sdk::trace::SdkTracerProvider {
    opentelemetry_sdk::trace::SdkTracerProvider::builder().build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_in_context_carries_the_trace_into_the_task() {
    let tracer = provider().tracer("ctx");
    let parent = tracer.start("parent");
    let cx = Context::current_with_span(parent);
    let expected = cx.span().span_context().trace_id();
    let (carried, lost) = {
        let _guard = cx.attach();
        let carried = sdk_telemetry::spawn_in_context(async {
            Context::current().span().span_context().trace_id()
        });
        let lost = tokio::spawn(async { Context::current().span().span_context().is_valid() });
        (carried, lost)
    };
    assert_eq!(carried.await.unwrap(), expected);
    assert!(
        !lost.await.unwrap(),
        "a plain spawn loses the context; that is why the helper exists"
    );
}
