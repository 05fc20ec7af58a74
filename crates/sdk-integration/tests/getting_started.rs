//! docs/getting-started.md: the guide's code, run against `scripts/dev` with the
//! variables the script prints, and the trace read back from the dev collector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use sdk_integration::sdk_bus::{
    Bus, BusConfig, EventSource, ServeOptions, SubjectError, SubjectPattern, TenantId,
};
use sdk_integration::sdk_codec::v1::{AgentTask, TaskResult, TaskStatus};
use sdk_integration::sdk_codec::{Codec, Format};
use sdk_integration::sdk_telemetry::{Telemetry, TelemetryConfig};
use sdk_integration::{MessageContext, Messenger};
use sdk_testkit::DevStack;

// guide:start
/// The planner hands a task to the researcher and waits for the result.
async fn talk(bus: &Bus, telemetry: &Telemetry) -> Result<TaskResult, Box<dyn std::error::Error>> {
    let acme = TenantId::new("acme")?;
    let codec = Codec::builder().format(Format::MessagePack).build()?;
    let agent = |name: &str| -> Result<Messenger, SubjectError> {
        let source = EventSource::new(&acme, "agent", name)?; // ce-source: /acme/agent/<name>
        Ok(Messenger::new(bus.clone(), codec.clone(), source).with_telemetry(telemetry))
    };

    // The researcher serves its inbox, sdk.acme.agent.researcher.inbox:
    // an AgentTask comes in, a TaskResult goes back.
    let inbox = acme.scope().agent_inbox("researcher")?;
    let researcher = agent("researcher")?
        .serve(
            &SubjectPattern::from(&inbox),
            ServeOptions::new(),
            |task: AgentTask, cx: MessageContext| async move {
                println!("researcher: {} for tenant {}", task.task_type, cx.tenant);
                Ok(TaskResult {
                    task_id: task.task_id,
                    agent_id: "researcher".into(),
                    status: TaskStatus::Succeeded as i32,
                    ..Default::default()
                })
            },
        )
        .await?;

    // The planner sends it a task and waits for the answer.
    let task = AgentTask {
        task_id: "t-1".into(),
        agent_id: "researcher".into(),
        task_type: "find_papers".into(),
        ..Default::default()
    };
    let result: TaskResult = agent("planner")?
        .request(&inbox, "sdk.task.assigned", &task)
        .await?;
    println!("planner: task {} is {:?}", result.task_id, result.status());
    researcher.abort();
    Ok(result)
}
// guide:end

#[test]
fn the_guide_shows_the_code_this_test_runs() {
    let guide = include_str!("../../../docs/getting-started.md");
    let this = include_str!("getting_started.rs");
    let start = this.find("// guide:start\n").expect("start marker") + "// guide:start\n".len();
    let end = this.find("// guide:end").expect("end marker");
    let code = &this[start..end];
    assert!(
        guide.contains(code),
        "docs/getting-started.md no longer shows the code of this test:\n{code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_talk_over_the_dev_stack_and_their_trace_reaches_its_collector() {
    let dev = DevStack::start();
    // What the guide has the reader export: the script's three variables, and a name.
    let lookup = |name: &str| match name {
        "OTEL_SERVICE_NAME" => Some("agents".to_owned()),
        _ => dev.exports().get(name).cloned(),
    };
    let bus = Bus::connect(BusConfig::from_lookup(lookup).unwrap())
        .await
        .unwrap();
    // As `Telemetry::from_env` does; the globals are this test binary's only ones.
    let telemetry = Telemetry::init(TelemetryConfig::from_lookup(lookup).unwrap()).unwrap();
    assert_eq!(bus.transport_name(), "nats");

    let result = talk(&bus, &telemetry).await.unwrap();
    assert_eq!(
        (result.task_id.as_str(), result.status()),
        ("t-1", TaskStatus::Succeeded)
    );
    bus.drain().await.unwrap();
    tokio::task::spawn_blocking(move || telemetry.shutdown(Duration::from_secs(5)))
        .await
        .unwrap()
        .unwrap();

    // One trace: the planner's request, and the researcher's process span under it.
    let template = "sdk.{tenant}.agent.{agent_id}.inbox";
    let (request, process) = dev.wait_for(
        Duration::from_secs(20),
        "the request and its process span",
        |r| {
            let request = r.spans_named(&format!("request {template}")).pop()?.clone();
            let process = r.spans_named(&format!("process {template}")).pop()?.clone();
            Some((request, process))
        },
    );
    assert_eq!(request.kind, "SPAN_KIND_CLIENT");
    assert_eq!(process.kind, "SPAN_KIND_CONSUMER");
    assert_eq!(process.trace_id, request.trace_id);
    assert_eq!(process.parent_id, request.span_id);
    assert_eq!(request.resource["service.name"], "agents");
    assert_eq!(
        request.attributes["messaging.destination.name"],
        "sdk.acme.agent.researcher.inbox"
    );
    assert_eq!(request.attributes["sdk.tenant.id"], "acme");
}
