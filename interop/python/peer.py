#!/usr/bin/env python3
"""A Python peer of the Rust SDK, driven by crates/sdk-integration/tests/python_interop.rs.

    peer.py --descriptors FILE corpus --read DIR --write DIR
    peer.py --descriptors FILE client --nats URL --otlp URL
    peer.py --descriptors FILE responder --nats URL
    peer.py --descriptors FILE jetstream --nats URL

Each command prints one JSON summary as the last line of stdout and exits 0, or prints
"interop mismatch: ..." to stderr and exits 1 when the Rust side did not keep the
contract (any other failure exits 2 with a traceback). `responder` prints READY once
it is subscribed and serves until stdin closes.
"""

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import traceback

import sdkwire
import samples
from sdkwire import FORMATS, JSON, Mismatch, header

TENANT = "acme"
# Generous: the machine running the suite may be slow and busy.
TIMEOUT = 20.0


def check_versions():
    """The packages must be the pinned ones of requirements.txt."""
    from importlib.metadata import PackageNotFoundError, version

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.txt")
    found = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, pinned = line.split("==")
            try:
                have = version(name)
            except PackageNotFoundError:
                have = None
            if have != pinned:
                raise Mismatch(
                    "%s is %s, but requirements.txt pins %s; run scripts/install-tools and "
                    "point SDK_PYTHONPATH at .tools/py" % (name, have or "not installed", pinned)
                )
            found[name] = have
    return found


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


# ---- 5: every type in every format, both ways --------------------------------


def corpus(types, args):
    with open(os.path.join(args.read, "manifest.json")) as f:
        manifest = json.load(f)
    seen = set()
    for entry in manifest["entries"]:
        name, fmt = entry["type"], entry["format"]
        what = "Rust's %s in %s" % (name, fmt)
        expect(name in samples.ALL, "%s: unknown type" % what)
        expect(entry["content_type"] == FORMATS[fmt], "%s: content type %r" % (what, entry["content_type"]))
        expect(entry["schema"] == types.schema(name), "%s: schema %r, expected %r" % (what, entry["schema"], types.schema(name)))
        with open(os.path.join(args.read, entry["file"]), "rb") as f:
            data = f.read()
        expected = samples.ALL[name](types)
        got = types.decode(name, data, FORMATS[fmt])
        sdkwire.require_equal(what, got, expected)
        if fmt == "json":
            sdkwire.require_canonical_json(what, data, expected)
        if name == "DocumentChunk":
            # Bit for bit, so that -0.0 and the subnormal count.
            expect(
                sdkwire.f32_bits(got.embedding) == samples.EMBEDDING_BITS,
                "%s: embedding bits %s, expected %s"
                % (what, [hex(b) for b in sdkwire.f32_bits(got.embedding)], [hex(b) for b in samples.EMBEDDING_BITS]),
            )
        seen.add((name, fmt))
    missing = sorted({(n, f) for n in samples.ALL for f in FORMATS} - seen)
    expect(not missing, "the Rust corpus lacks %s" % missing)

    os.makedirs(args.write, exist_ok=True)
    entries = []
    for name, build in samples.ALL.items():
        for fmt, content_type in FORMATS.items():
            file = "%s.%s" % (name, fmt)
            with open(os.path.join(args.write, file), "wb") as f:
                f.write(types.encode(build(types), content_type))
            entries.append(
                {"type": name, "format": fmt, "content_type": content_type, "schema": types.schema(name), "file": file}
            )
    with open(os.path.join(args.write, "manifest.json"), "w") as f:
        json.dump({"entries": entries}, f, indent=1)
    return {"read": len(seen), "written": len(entries)}


# ---- NATS helpers -------------------------------------------------------------


async def connect(url):
    import nats

    async def quiet(e):
        print("nats client: %s" % e, file=sys.stderr)

    # Replies come back to the tenant's inbox, _INBOX.<tenant>.<id>: an SDK service
    # answers nowhere else.
    return await nats.connect(
        servers=[url],
        connect_timeout=TIMEOUT,
        allow_reconnect=False,
        error_cb=quiet,
        name="python-peer",
        inbox_prefix="_INBOX." + TENANT,
    )


def service_error(msg):
    """(code, text) of an error reply, or None for a normal one."""
    code = header(msg.headers, "Nats-Service-Error-Code")
    if code is None:
        return None
    return code, header(msg.headers, "Nats-Service-Error") or ""


# ---- 1 and 2: Python calls the Rust services ---------------------------------


async def client(types, args):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    nc = await connect(args.nats)
    source = "/%s/python/peer-1" % TENANT
    request_type = "sdk.interop.request"
    task_schema = types.schema("AgentTask")
    replies = []

    def check_reply(msg, service, task_id, what, reply_type, request_id=None):
        failed = service_error(msg)
        expect(failed is None, "%s: the Rust service answered an error %s" % (what, failed))
        h = msg.headers or {}
        expect(header(h, "ce-specversion") == "1.0", "%s: ce-specversion %r" % (what, header(h, "ce-specversion")))
        expect(header(h, "ce-id"), "%s: no ce-id" % what)
        expect(header(h, "ce-type") == "sdk.reply", "%s: ce-type %r" % (what, header(h, "ce-type")))
        expect(header(h, "ce-tenantid") == TENANT, "%s: ce-tenantid %r" % (what, header(h, "ce-tenantid")))
        expect(
            header(h, "ce-source") == "/%s/interop/rust-%s" % (TENANT, service),
            "%s: ce-source %r" % (what, header(h, "ce-source")),
        )
        # A reply comes in the format the request asked for (Accept) or used.
        content_type = header(h, "ce-datacontenttype")
        expect(content_type == reply_type, "%s: reply content type %r, expected %r" % (what, content_type, reply_type))
        if request_id is not None:
            # The reply joins the request's conversation and names it as its cause.
            expect(header(h, "ce-correlationid") == request_id, "%s: ce-correlationid %r" % (what, header(h, "ce-correlationid")))
            expect(header(h, "ce-causationid") == request_id, "%s: ce-causationid %r" % (what, header(h, "ce-causationid")))
        expect(
            header(h, "ce-dataschema") == types.schema("TaskResult"),
            "%s: reply schema %r" % (what, header(h, "ce-dataschema")),
        )
        expect(header(h, "Content-Encoding") is None, "%s: unexpected Content-Encoding" % what)
        got = types.decode("TaskResult", msg.data, content_type)
        expected = samples.task_result(types)
        expected.task_id = task_id
        sdkwire.require_equal(what + ": the reply", got, expected)
        if content_type == JSON:
            sdkwire.require_canonical_json(what + ": the reply", msg.data, expected)
        replies.append({"task_id": task_id, "reply_format": service})

    for service in FORMATS:
        subject = "sdk.%s.interop.%s" % (TENANT, service)
        # Binary mode: attributes in ce-* headers, the encoded value as the payload.
        for fmt, content_type in FORMATS.items():
            task = samples.agent_task(types)
            task.task_id = "t-%s-binary-%s" % (service, fmt)
            headers = sdkwire.ce_headers(source, request_type, TENANT, content_type, task_schema)
            msg = await nc.request(subject, types.encode(task, content_type), timeout=TIMEOUT, headers=headers)
            check_reply(
                msg, service, task.task_id, "binary %s request to %s" % (fmt, subject), content_type, headers["ce-id"]
            )
            # The same request asking for the service's own format gets that format.
            task.task_id = "t-%s-accept-%s" % (service, fmt)
            headers = sdkwire.ce_headers(source, request_type, TENANT, content_type, task_schema)
            headers["accept"] = FORMATS[service]
            msg = await nc.request(subject, types.encode(task, content_type), timeout=TIMEOUT, headers=headers)
            check_reply(
                msg, service, task.task_id, "%s request accepting %s" % (fmt, service), FORMATS[service], headers["ce-id"]
            )
        # Structured mode: one application/cloudevents+json body; JSON data inline,
        # binary data as data_base64.
        for fmt, content_type in FORMATS.items():
            task = samples.agent_task(types)
            task.task_id = "t-%s-structured-%s" % (service, fmt)
            event = {
                "specversion": "1.0",
                "id": sdkwire.new_id(),
                "source": source,
                "type": request_type,
                "time": sdkwire.now(),
                "tenantid": TENANT,
                "datacontenttype": content_type,
                "dataschema": task_schema,
            }
            encoded = types.encode(task, content_type)
            if content_type == JSON:
                event["data"] = json.loads(encoded)
            else:
                event["data_base64"] = base64.b64encode(encoded).decode()
            msg = await nc.request(
                subject,
                json.dumps(event).encode(),
                timeout=TIMEOUT,
                headers={"content-type": "application/cloudevents+json; charset=utf-8"},
            )
            check_reply(msg, service, task.task_id, "structured %s request to %s" % (fmt, subject), content_type)

    # Service errors, each with its Nats-Service-Error headers, the ce-* attributes
    # that tie it to the request, and the same text as a text/plain body.
    errors = {}

    async def expect_error(name, code, needle, subject, payload, headers):
        msg = await nc.request(subject, payload, timeout=TIMEOUT, headers=headers)
        failed = service_error(msg)
        expect(failed is not None, "%s: expected a %s error reply, got a normal reply" % (name, code))
        got_code, text = failed
        expect(got_code == str(code), "%s: Nats-Service-Error-Code %r, expected %s (%s)" % (name, got_code, code, text))
        expect(needle in text, "%s: Nats-Service-Error %r does not mention %r" % (name, text, needle))
        expect(
            msg.data.decode("utf-8") == text,
            "%s: the error body %r is not the Nats-Service-Error text %r" % (name, msg.data, text),
        )
        errors[name] = {"code": int(got_code), "message": text}

    json_subject = "sdk.%s.interop.json" % TENANT
    await expect_error(
        "undecodable msgpack", 400, "msgpack", json_subject, b"\xc1",
        sdkwire.ce_headers(source, request_type, TENANT, sdkwire.MSGPACK, task_schema),
    )
    await expect_error(
        "undecodable protobuf", 400, "protobuf", json_subject, b"\x0a\x05ab",
        sdkwire.ce_headers(source, request_type, TENANT, sdkwire.PROTOBUF, task_schema),
    )
    invalid = samples.agent_task(types)
    invalid.task_id = ""
    await expect_error(
        "invalid task", 400, "taskId", json_subject, types.encode(invalid, JSON),
        sdkwire.ce_headers(source, request_type, TENANT, JSON, task_schema),
    )
    await expect_error(
        "broken structured event", 400, "structured", json_subject, b"{not json",
        {"content-type": "application/cloudevents+json"},
    )
    await expect_error(
        "tenant mismatch", 403, "does not match", json_subject,
        types.encode(samples.agent_task(types), JSON),
        sdkwire.ce_headers("/globex/python/peer-1", request_type, "globex", JSON, task_schema),
    )
    oversized = samples.agent_task(types)
    oversized.task_id = "t-oversized"
    oversized.task_type = "oversized"
    await expect_error(
        "reply too large", 413, "max_payload", json_subject, types.encode(oversized, JSON),
        sdkwire.ce_headers(source, request_type, TENANT, JSON, task_schema),
    )

    # Trace continuation: a Python span whose context travels in `traceparent`.
    class Recording(SpanExporter):
        def __init__(self, inner):
            self.inner, self.results = inner, []

        def export(self, spans):
            result = self.inner.export(spans)
            self.results.append(result)
            return result

        def shutdown(self):
            self.inner.shutdown()

    exporter = Recording(OTLPSpanExporter(endpoint=args.otlp.rstrip("/") + "/v1/traces", timeout=TIMEOUT))
    provider = TracerProvider(resource=Resource.create({"service.name": "python-peer"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("sdk-interop-peer")
    task = samples.agent_task(types)
    task.task_id = "t-traced"
    with tracer.start_as_current_span("python request " + json_subject, kind=SpanKind.CLIENT) as span:
        headers = sdkwire.ce_headers(source, request_type, TENANT, JSON, task_schema)
        TraceContextTextMapPropagator().inject(headers)
        expect("traceparent" in headers, "the OpenTelemetry propagator wrote no traceparent")
        msg = await nc.request(json_subject, types.encode(task, JSON), timeout=TIMEOUT, headers=headers)
        context = span.get_span_context()
    check_reply(msg, "json", task.task_id, "traced request", JSON, headers["ce-id"])
    trace_id = "%032x" % context.trace_id
    span_id = "%016x" % context.span_id
    reply_parent = header(msg.headers, "traceparent")
    expect(reply_parent, "the reply to the traced request has no traceparent")
    parts = reply_parent.split("-")
    expect(len(parts) == 4 and parts[0] == "00", "the reply's traceparent %r is not W3C" % reply_parent)
    expect(parts[1] == trace_id, "the reply is in trace %s, the request in %s" % (parts[1], trace_id))
    expect(parts[2] != span_id, "the reply's traceparent names the Python span, not the Rust one")
    provider.shutdown()
    expect(
        exporter.results and all(r == SpanExportResult.SUCCESS for r in exporter.results),
        "the OTLP/HTTP export to the collector failed: %s" % exporter.results,
    )

    await nc.drain()
    return {
        "replies": replies,
        "errors": errors,
        "trace": {"trace_id": trace_id, "span_id": span_id, "reply_span_id": parts[2]},
    }


# ---- 3: Rust calls a Python responder -----------------------------------------


async def responder(types, args):
    nc = await connect(args.nats)
    expected_task = samples.agent_task(types)
    answered = {}
    refused = []
    failures = []

    async def reply_error(msg, code, text):
        await nc.publish(msg.reply, b"", headers={"Nats-Service-Error": text, "Nats-Service-Error-Code": str(code)})

    async def handle(msg):
        try:
            h = msg.headers or {}
            what = "request on %s" % msg.subject
            expect(header(h, "ce-specversion") == "1.0", "%s: ce-specversion %r" % (what, header(h, "ce-specversion")))
            expect(header(h, "ce-id"), "%s: no ce-id" % what)
            expect(header(h, "ce-tenantid") == TENANT, "%s: ce-tenantid %r" % (what, header(h, "ce-tenantid")))
            expect(header(h, "ce-type") == "sdk.pyagent.run", "%s: ce-type %r" % (what, header(h, "ce-type")))
            source = header(h, "ce-source") or ""
            expect(source.startswith("/%s/agent/rust-" % TENANT), "%s: ce-source %r" % (what, source))
            expect(header(h, "ce-dataschema") == types.schema("AgentTask"), "%s: ce-dataschema %r" % (what, header(h, "ce-dataschema")))
            content_type = header(h, "ce-datacontenttype")
            expect(content_type in FORMATS.values(), "%s: ce-datacontenttype %r" % (what, content_type))
            task = types.decode("AgentTask", msg.data, content_type)
            if task.task_type == "fail":
                refused.append(task.task_id)
                await reply_error(msg, 503, "the python peer refuses task %s" % task.task_id)
                return
            sdkwire.require_equal("%s: the %s task" % (what, content_type), task, expected_task)
            if content_type == JSON:
                sdkwire.require_canonical_json("%s: the JSON task" % what, msg.data, expected_task)
            reply = sdkwire.ce_headers(
                "/%s/pyagent/py-1" % TENANT, "sdk.reply", TENANT, content_type, types.schema("TaskResult")
            )
            reply["ce-correlationid"] = header(h, "ce-id")
            await nc.publish(msg.reply, types.encode(samples.task_result(types), content_type), headers=reply)
            answered[content_type] = answered.get(content_type, 0) + 1
        except Exception as e:  # recorded, answered, and reported at the end
            failures.append("%s: %s" % (type(e).__name__, e))
            if msg.reply:
                await reply_error(msg, 422, str(e).splitlines()[0][:200])

    await nc.subscribe("sdk.*.pyagent.run", cb=handle)
    await nc.flush(timeout=TIMEOUT)
    print("READY", flush=True)
    # Serve until the test closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.drain()
    expect(not failures, "the responder saw bad requests:\n" + "\n".join(failures))
    return {"answered": answered, "refused": refused}


# ---- 4: JetStream ---------------------------------------------------------------


async def jetstream(types, args):
    from nats.js.errors import NotFoundError

    nc = await connect(args.nats)
    js = nc.jetstream(timeout=TIMEOUT)
    stream = "SDK_EVENTS_" + TENANT
    subject = "sdk.%s.events.interop.sample" % TENANT
    source = "/%s/python/peer-1" % TENANT
    schema = types.schema("EventMessage")
    published = []
    duplicate = None
    for fmt, content_type in FORMATS.items():
        event = samples.event_message(types)
        event.event_id = "e-%s" % fmt
        payload = types.encode(event, content_type)
        headers = sdkwire.ce_headers(source, "sdk.interop.sample", TENANT, content_type, schema)
        # De-duplication ids are scoped by tenant: <tenant>:<ce-id>.
        headers["Nats-Msg-Id"] = TENANT + ":" + headers["ce-id"]
        ack = await js.publish(subject, payload, headers=dict(headers))
        expect(ack.stream == stream, "%s was stored in %r, expected %s" % (event.event_id, ack.stream, stream))
        expect(not ack.duplicate, "%s was taken for a duplicate" % event.event_id)
        published.append(event.event_id)
        if fmt == "json":
            # The same Nats-Msg-Id again: the server keeps one copy.
            again = await js.publish(subject, payload, headers=dict(headers))
            expect(again.duplicate and again.seq == ack.seq, "a re-publish with the same Nats-Msg-Id was stored again: %s" % again)
            duplicate = {"seq": again.seq, "duplicate": again.duplicate}

    poison_subject = "sdk.%s.events.interop.poison" % TENANT
    poison = b'{"eventId": "e-poison", "eventType": '
    poison_headers = sdkwire.ce_headers(source, "sdk.interop.poison", TENANT, JSON, schema)
    poison_headers["Nats-Msg-Id"] = TENANT + ":" + poison_headers["ce-id"]
    await js.publish(poison_subject, poison, headers=dict(poison_headers))

    dlq_subject = "sdk.%s.dlq.events.interop.poison" % TENANT
    deadline = time.monotonic() + TIMEOUT * 2
    while True:
        try:
            letter = await js.get_last_msg("SDK_DLQ", dlq_subject)
            break
        except NotFoundError:
            expect(time.monotonic() < deadline, "no dead letter on %s within %.0f s" % (dlq_subject, TIMEOUT * 2))
            await asyncio.sleep(0.05)
    h = letter.headers or {}
    expect(letter.data == poison, "the dead letter's payload %r is not the original %r" % (letter.data, poison))
    reason = header(h, "sdk-dlq-reason") or ""
    expect(reason.startswith("undecodable EventMessage") and "json" in reason, "sdk-dlq-reason %r" % reason)
    expect(header(h, "sdk-dlq-subject") == poison_subject, "sdk-dlq-subject %r" % header(h, "sdk-dlq-subject"))
    expect(header(h, "sdk-dlq-deliveries") == "1", "sdk-dlq-deliveries %r" % header(h, "sdk-dlq-deliveries"))
    expect(header(h, "sdk-dlq-consumer") == "interop-worker", "sdk-dlq-consumer %r" % header(h, "sdk-dlq-consumer"))
    expect(header(h, "sdk-dlq-time"), "no sdk-dlq-time")
    for name in ("ce-id", "ce-type", "ce-source", "ce-tenantid", "ce-datacontenttype"):
        expect(header(h, name) == poison_headers[name], "the dead letter's %s is %r, the original's %r" % (name, header(h, name), poison_headers[name]))

    info = await js.stream_info(stream)
    await nc.drain()
    return {
        "published": published,
        "duplicate": duplicate,
        "stream_messages": info.state.messages,
        "dead_letter": {
            "subject": letter.subject,
            "reason": reason,
            "original_subject": header(h, "sdk-dlq-subject"),
            "deliveries": header(h, "sdk-dlq-deliveries"),
            "consumer": header(h, "sdk-dlq-consumer"),
            "ce_id": header(h, "ce-id"),
            "payload_intact": letter.data == poison,
        },
    }


async def micro(types, args):
    """Discovers a Rust service with the NATS micro protocol, parsed by nats-py's own
    micro types, and checks its stats after a few requests."""
    from nats.micro.service import ServiceInfo, ServicePing, ServiceStats

    nc = await connect(args.nats)
    name = args.name
    ping = ServicePing.from_dict(json.loads((await nc.request("$SRV.PING." + name, b"", timeout=TIMEOUT)).data))
    expect(ping.name == name and ping.version == "1.0.0", "ping: %r" % ping)
    expect(ping.metadata.get("sdk.tenant") == TENANT, "ping metadata: %r" % ping.metadata)
    by_id = "$SRV.INFO.%s.%s" % (name, ping.id)
    info = ServiceInfo.from_dict(json.loads((await nc.request(by_id, b"", timeout=TIMEOUT)).data))
    expect(info.id == ping.id, "info id %r" % info.id)
    expect(info.description == "echoes for interop", "info description %r" % info.description)
    expect([e.subject for e in info.endpoints] == [args.subject], "info endpoints %r" % info.endpoints)
    # Two good requests and one that cannot be decoded.
    source = "/%s/python/peer-1" % TENANT
    for body in (b'{"taskId": "t-1", "agentId": "a", "taskType": "echo"}',) * 2:
        headers = sdkwire.ce_headers(source, "sdk.interop.request", TENANT, JSON)
        await nc.request(args.subject, body, timeout=TIMEOUT, headers=headers)
    headers = sdkwire.ce_headers(source, "sdk.interop.request", TENANT, JSON)
    await nc.request(args.subject, b"not json", timeout=TIMEOUT, headers=headers)
    stats = ServiceStats.from_dict(json.loads((await nc.request("$SRV.STATS." + name, b"", timeout=TIMEOUT)).data))
    endpoint = stats.endpoints[0]
    await nc.close()
    return {
        "ping": {"name": ping.name, "id": ping.id, "version": ping.version},
        "endpoints": [e.subject for e in info.endpoints],
        "stats": {
            "requests": endpoint.num_requests,
            "errors": endpoint.num_errors,
            "last_error": endpoint.last_error,
            "processing_time": endpoint.processing_time,
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptors", required=True, help="a serialized FileDescriptorSet of proto/sdk/v1")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("corpus")
    c.add_argument("--read", required=True)
    c.add_argument("--write", required=True)
    c = sub.add_parser("client")
    c.add_argument("--nats", required=True)
    c.add_argument("--otlp", required=True, help="the collector's OTLP/HTTP base URL")
    c = sub.add_parser("responder")
    c.add_argument("--nats", required=True)
    c = sub.add_parser("jetstream")
    c.add_argument("--nats", required=True)
    c = sub.add_parser("micro")
    c.add_argument("--nats", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--subject", required=True)
    args = parser.parse_args()
    try:
        versions = check_versions()
        types = sdkwire.Types(args.descriptors)
        if args.command == "corpus":
            summary = corpus(types, args)
        else:
            run = {"client": client, "responder": responder, "jetstream": jetstream, "micro": micro}[
                args.command
            ]
            summary = asyncio.run(run(types, args))
    except Mismatch as e:
        print("interop mismatch: %s" % e, file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(2)
    summary["versions"] = versions
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
