//! The main demo: a planner agent hands a task to a researcher agent and an observer
//! watches the events.
//!
//! Without `NATS_URL` it runs on the in-process transport; with it, through NATS.
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` its spans go to that collector, and the
//! researcher's `process` span continues the planner's `request` span.

use std::time::Duration;

use sdk_integration::Messenger;
use sdk_integration::sdk_bus::{Bus, EventSource, ServeOptions, SubjectPattern, TenantId};
use sdk_integration::sdk_codec::v1::{AgentTask, EventMessage, TaskResult, TaskStatus, TokenUsage};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::{Exporter, Telemetry, TelemetryConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("demo failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise quiet, with logs on stderr.
    let telemetry = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        Telemetry::from_env()?
    } else {
        Telemetry::init(
            TelemetryConfig::builder("sdk-demo")
                .exporters(Exporter::None, Exporter::None, Exporter::None)
                .build()?,
        )?
    };
    let bus = Bus::from_env().await?;
    println!(
        "transport: {} ({})",
        bus.transport_name(),
        bus.server_details().version
    );
    let acme = TenantId::new("acme")?;
    let codec = Codec::builder().format(Format::MessagePack).build()?;
    let planner = Messenger::new(
        bus.clone(),
        codec.clone(),
        EventSource::new(&acme, "agent", "planner")?,
    )
    .with_telemetry(&telemetry);
    let researcher = Messenger::new(
        bus.clone(),
        codec.clone(),
        EventSource::new(&acme, "agent", "researcher")?,
    )
    .with_telemetry(&telemetry);

    // The observer watches every event of the tenant.
    let mut events = bus
        .subscribe(&acme.scope().pattern(&["events", ">"])?)
        .await?;

    // The researcher answers tasks sent to its inbox: typed in, typed out.
    let worker = researcher.clone();
    let inbox = acme.scope().agent_inbox("researcher")?;
    let service = researcher
        .serve(
            &SubjectPattern::from(&inbox),
            ServeOptions::new().concurrency(4),
            move |task: AgentTask, delivery| {
                let worker = worker.clone();
                async move {
                    tracing::info!(task = %task.task_id, "researcher got a task");
                    println!("researcher got task {} ({})", task.task_id, task.task_type);
                    let event = EventMessage {
                        event_id: sdk_integration::sdk_bus::new_id(),
                        event_type: "sdk.task.completed".into(),
                        source: "/acme/agent/researcher".into(),
                        subject: task.task_id.clone(),
                        ..Default::default()
                    };
                    let completed = delivery.subject.tenant().scope().event("task.completed")?;
                    worker
                        .publish(&completed, "sdk.task.completed", &event)
                        .await?;
                    Ok(TaskResult {
                        task_id: task.task_id,
                        agent_id: "researcher".into(),
                        status: TaskStatus::Succeeded as i32,
                        usage: Some(TokenUsage {
                            prompt_tokens: 812,
                            completion_tokens: 230,
                            total_tokens: 1042,
                        }),
                        cost_usd: 0.0042,
                        model: "demo-model".into(),
                        ..Default::default()
                    })
                }
            },
        )
        .await?;
    bus.flush().await?;

    let task = AgentTask {
        task_id: "t-1".into(),
        agent_id: "researcher".into(),
        task_type: "find_papers".into(),
        ..Default::default()
    };
    let result: TaskResult = planner.request(&inbox, "sdk.task.assigned", &task).await?;
    println!(
        "planner got result for {}: status {:?}, {} tokens, ${}",
        result.task_id,
        result.status(),
        result.usage.map(|u| u.total_tokens).unwrap_or_default(),
        result.cost_usd
    );
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await?
        .ok_or("the event stream ended")??;
    let completed: EventMessage = planner.decode(&event.envelope)?;
    println!(
        "observer saw {} on {} for {}",
        completed.event_type, event.subject, completed.subject
    );

    bus.drain().await?;
    service.wait().await?;
    println!("stats: {:?}", bus.stats());
    telemetry.shutdown(Duration::from_secs(5))?;
    Ok(())
}
