//! The main demo: an agent message encoded, sent and received.
//!
//! With `NATS_URL` set it goes through that NATS server; without it, it says so and
//! runs the codec and telemetry parts only (the in-process transport comes with the
//! bus issue).

use sdk_integration::bus::{Bus, BusConfig, Subject, TenantId};
use sdk_integration::codec::{Codec, Format, v1::AgentMessage};
use sdk_integration::telemetry::{Telemetry, TelemetryConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = Telemetry::init(TelemetryConfig::builder("sdk-demo").build())?;
    let _tracer = telemetry.tracer("demo");
    let codec = Codec::builder().format(Format::MessagePack).build()?;
    let tenant = TenantId::new("acme")?;
    let inbox = Subject::agent_inbox(&tenant, "researcher")?;
    let message = AgentMessage {
        message_id: "m-1".into(),
        sender_id: "planner".into(),
        receiver_id: "researcher".into(),
        content: "find three papers on vector search".into(),
        ..Default::default()
    };
    let encoded = codec.encode(&message)?;
    println!(
        "encoded {} bytes of {} for {inbox}",
        encoded.bytes.len(),
        encoded.content_type
    );
    match std::env::var("NATS_URL") {
        Ok(url) => {
            let bus = Bus::connect(BusConfig::new(&url)).await?;
            let mut sub = bus.subscribe(&inbox).await?;
            bus.publish(&inbox, encoded.bytes.clone()).await?;
            if let Some(msg) = sub.next().await {
                let back: AgentMessage = codec.decode(msg.payload, &encoded.meta())?;
                println!("received on {}: {back:?}", msg.subject);
            }
        }
        Err(_) => {
            let back: AgentMessage = codec.decode(encoded.bytes.clone(), &encoded.meta())?;
            println!("NATS_URL is not set; decoded locally: {back:?}");
        }
    }
    telemetry.shutdown()?;
    Ok(())
}
