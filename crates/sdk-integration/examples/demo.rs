//! The main demo: a planner agent hands a task to a researcher agent, which reports
//! `task.completed`; an auditor processes those events.
//!
//! Without `NATS_URL` it runs on the in-process transport, where the event goes over
//! a plain subscription. With it, through NATS, and the event is stored in JetStream
//! and processed by a durable consumer, as the contract asks of events. With
//! `OTEL_EXPORTER_OTLP_ENDPOINT` its spans go to that collector as one trace: the
//! planner's request, the researcher's process span, its durable publish, and the
//! auditor's process span.

use std::sync::Arc;
use std::time::Duration;

use sdk_integration::sdk_bus::jetstream::stream::StreamSpec;
use sdk_integration::sdk_bus::{
    Bus, ConsumerSpec, EventSource, Outcome, ServeOptions, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::v1::{AgentTask, EventMessage, TaskResult, TaskStatus, TokenUsage};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::{Exporter, Telemetry, TelemetryConfig};
use sdk_integration::{MessageContext, Messenger};
use tokio::sync::Notify;

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
    let messenger = |component: &str| -> Result<Messenger, Box<dyn std::error::Error>> {
        Ok(Messenger::new(
            bus.clone(),
            codec.clone(),
            EventSource::new(&acme, "agent", component)?,
        )
        .with_telemetry(&telemetry))
    };
    let planner = messenger("planner")?;
    let researcher = messenger("researcher")?;
    let auditor = messenger("auditor")?;
    let jetstream = bus.jetstream().ok();

    // The auditor processes every task.completed event: durably over JetStream, or
    // from a plain subscription in-process.
    let audited = Arc::new(Notify::new());
    let audit = {
        let audited = Arc::clone(&audited);
        move |event: EventMessage, cx: MessageContext| {
            println!(
                "auditor processed {} for {} (delivery {}, conversation {})",
                event.event_type, event.subject, cx.delivered, cx.correlation_id
            );
            audited.notify_one();
        }
    };
    let mut background = None;
    match &jetstream {
        Some(js) => {
            js.ensure_stream(&StreamSpec::events()).await?;
            js.ensure_stream(&StreamSpec::dead_letters()).await?;
            let audit = audit.clone();
            background = Some(
                auditor
                    .consume(
                        js,
                        ConsumerSpec::new("SDK_EVENTS", "auditor"),
                        move |event: EventMessage, cx: MessageContext| {
                            audit(event, cx);
                            async { Outcome::Ack }
                        },
                    )
                    .await?,
            );
        }
        None => {
            let mut events = auditor
                .subscribe::<EventMessage>(&acme.scope().pattern(&["events", ">"])?)
                .await?;
            tokio::spawn(async move {
                while let Some(Ok(next)) = events.next().await {
                    match next {
                        Ok(received) => audit(received.value, received.context.clone()),
                        Err(bad) => eprintln!("auditor could not read an event: {}", bad.error),
                    }
                }
            });
        }
    }

    // The researcher answers tasks sent to its inbox: typed in, typed out, and reports
    // task.completed (joining the planner's conversation by itself).
    let worker = researcher.clone();
    let js = jetstream.clone();
    let inbox = acme.scope().agent_inbox("researcher")?;
    let service = researcher
        .serve(
            &SubjectPattern::from(&inbox),
            ServeOptions::new().concurrency(4),
            move |task: AgentTask, cx: MessageContext| {
                let (worker, js) = (worker.clone(), js.clone());
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
                    let completed = cx.tenant.scope().event("task.completed")?;
                    match &js {
                        Some(js) => {
                            worker
                                .publish_durable(js, &completed, "sdk.task.completed", &event)
                                .await?;
                        }
                        None => {
                            worker
                                .publish(&completed, "sdk.task.completed", &event)
                                .await?
                        }
                    }
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
    tokio::time::timeout(Duration::from_secs(10), audited.notified()).await?;

    bus.drain().await?;
    service.wait().await?;
    if let Some(worker) = background {
        worker.wait().await?;
    }
    println!("stats: {:?}", bus.stats());
    telemetry.shutdown(Duration::from_secs(5))?;
    Ok(())
}
