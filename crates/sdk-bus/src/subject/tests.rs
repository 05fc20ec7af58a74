use super::*;

#[test]
fn a_wildcard_pattern_keeps_invented_tokens_out_of_the_template() {
    let any = SubjectPattern::new("sdk.*.>").unwrap();
    let subject = Subject::parse("sdk.acme.random1.random2").unwrap();
    assert_eq!(any.template_for(&subject), "sdk.{tenant}.{rest}");
    let shared = SubjectPattern::all_tenants("rag", "query").unwrap();
    let q = Subject::parse("sdk.beta.rag.query").unwrap();
    assert_eq!(shared.template_for(&q), "sdk.{tenant}.rag.query");
    let inbox = Subject::parse("sdk.acme.agent.a-7.inbox").unwrap();
    let fixed = SubjectPattern::from(&inbox);
    assert_eq!(
        fixed.template_for(&inbox),
        "sdk.{tenant}.agent.{agent_id}.inbox"
    );
}

#[test]
fn tenants_and_tokens_follow_the_grammar() {
    for bad in [
        "",
        "Acme",
        "a.b",
        "a*",
        ">",
        "a b",
        "-acme",
        "é",
        &"a".repeat(65),
    ] {
        assert!(TenantId::new(bad).is_err(), "{bad:?}");
    }
    for good in ["acme", "a", "0-x_y", &"a".repeat(64)] {
        assert!(TenantId::new(good).is_ok(), "{good:?}");
    }
    let err = Token::new("agent id", "plan.ner").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid agent id \"plan.ner\": the '.' at byte 4 is not allowed; subject tokens use only A-Z, a-z, 0-9, _ and -"
    );
    let err = TenantId::new("").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid tenant id \"\": it is empty; use 1 to 64 characters of [a-z0-9_-]"
    );
}

#[test]
fn every_family_builds_and_parses_back() {
    let t = TenantId::new("acme").unwrap();
    let cases = [
        (
            Subject::agent_inbox(&t, "planner").unwrap(),
            "sdk.acme.agent.planner.inbox",
            "sdk.{tenant}.agent.{agent_id}.inbox",
        ),
        (
            Subject::component(&t, "rag", "query").unwrap(),
            "sdk.acme.rag.query",
            "sdk.{tenant}.rag.query",
        ),
        (
            Subject::event(&t, "task.completed").unwrap(),
            "sdk.acme.events.task.completed",
            "sdk.{tenant}.events.{event_type}",
        ),
        (
            Subject::workflow(&t, "wf-1", "step_done").unwrap(),
            "sdk.acme.workflow.wf-1.step_done",
            "sdk.{tenant}.workflow.{workflow_id}.{event}",
        ),
        (
            Subject::status(&t, "agent", "i-1").unwrap(),
            "sdk.acme.status.agent.i-1",
            "sdk.{tenant}.status.{component}.{instance_id}",
        ),
    ];
    for (subject, text, template) in cases {
        assert_eq!(subject.as_str(), text);
        assert_eq!(subject.template(), template);
        assert_eq!(subject.tenant().as_str(), "acme");
        assert_eq!(Subject::parse(text).unwrap(), subject);
    }
    let dlq = Subject::event(&t, "task.completed").unwrap().dead_letter();
    assert_eq!(dlq.as_str(), "sdk.acme.dlq.events.task.completed");
    assert_eq!(
        Subject::parse(dlq.as_str()).unwrap().family(),
        Family::DeadLetter
    );
}

#[test]
fn bad_input_names_the_bad_token() {
    let t = TenantId::new("acme").unwrap();
    let err = Subject::event(&t, "task..done").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid event type \"task..done\": the part at byte 5 is empty; remove the extra '.' (a '.' separates parts)"
    );
    assert!(Subject::component(&t, "events", "x").is_err());
    assert!(Subject::parse("sdk.acme.rag").is_err());
    assert!(Subject::parse("other.acme.rag.query").is_err());
    assert!(Subject::parse("sdk.ACME.rag.query").is_err());
    assert!(Subject::parse("sdk.acme.agent.x.outbox").is_err());
    assert!(SubjectPattern::new("sdk.>.x").is_err());
    assert!(SubjectPattern::new("sdk.*.rag.query").is_ok());
}

#[test]
fn errors_say_what_is_wrong_and_what_to_do() {
    let t = TenantId::new("acme").unwrap();
    let text = |r: Result<Subject, SubjectError>| r.unwrap_err().to_string();
    let tokens = "subject tokens use only A-Z, a-z, 0-9, _ and -";
    // Event types: the byte offset is in the whole type, not in its part.
    assert_eq!(
        text(Subject::event(&t, "task completed")),
        format!(
            "invalid event type \"task completed\": the space at byte 4 is not allowed; {tokens}"
        )
    );
    assert_eq!(
        text(Subject::event(&t, "task.completed now")),
        format!(
            "invalid event type \"task.completed now\": the space at byte 14 is not allowed; {tokens}"
        )
    );
    assert_eq!(
        text(Subject::event(&t, "task.*")),
        format!(
            "invalid event type \"task.*\": the wildcard '*' at byte 5 is not allowed; {tokens}"
        )
    );
    assert_eq!(
        text(Subject::event(&t, ".task")),
        "invalid event type \".task\": the part at byte 0 is empty; remove the extra '.' (a '.' separates parts)"
    );
    assert_eq!(
        text(Subject::event(&t, "task.")),
        "invalid event type \"task.\": the part at byte 5 is empty; remove the extra '.' (a '.' separates parts)"
    );
    assert_eq!(
        text(Subject::event(&t, "")),
        "invalid event type \"\": it is empty; use 1 to 64 characters of A-Z, a-z, 0-9, _ and -"
    );
    let long = format!("task.{}", "x".repeat(65));
    assert_eq!(
        text(Subject::event(&t, &long)),
        format!(
            "invalid event type {long:?}: the part \"{}\" is 65 bytes long; shorten it to at most 64",
            "x".repeat(65)
        )
    );
    // Single tokens.
    assert_eq!(
        text(Subject::agent_inbox(&t, "re searcher")),
        format!("invalid agent id \"re searcher\": the space at byte 2 is not allowed; {tokens}")
    );
    assert_eq!(
        text(Subject::workflow(&t, "wf\t1", "done")),
        format!(
            "invalid workflow id \"wf\\t1\": the control character '\\t' at byte 2 is not allowed; {tokens}"
        )
    );
    assert_eq!(
        text(Subject::status(&t, "agent", "café")),
        format!("invalid instance id \"café\": the 'é' at byte 3 is not allowed; {tokens}")
    );
    assert_eq!(
        text(Subject::component(&t, "rag", "")),
        "invalid action \"\": it is empty; use 1 to 64 characters of A-Z, a-z, 0-9, _ and -"
    );
    assert_eq!(
        text(Subject::component(&t, &"r".repeat(65), "query")),
        format!(
            "invalid component {:?}: it is 65 bytes long; shorten it to at most 64",
            "r".repeat(65)
        )
    );
    // Tenant ids keep their text (configuration errors quote it).
    assert_eq!(
        TenantId::new("Acme Corp").unwrap_err().to_string(),
        "invalid tenant id \"Acme Corp\": character 'A' at byte 0 is not allowed; use [a-z0-9_-]"
    );
    assert_eq!(
        TenantId::new("-acme").unwrap_err().to_string(),
        "invalid tenant id \"-acme\": it starts with '-'; start it with a letter or a digit"
    );
}

#[test]
fn patterns_match_like_nats() {
    assert!(pattern_matches("sdk.*.rag.query", "sdk.acme.rag.query"));
    assert!(!pattern_matches("sdk.*.rag.query", "sdk.acme.rag.query.x"));
    assert!(pattern_matches("sdk.acme.>", "sdk.acme.events.a.b"));
    assert!(!pattern_matches("sdk.acme.>", "sdk.acme"));
    assert!(!pattern_matches("sdk.acme.events.>", "sdk.other.events.x"));
    assert!(pattern_matches("_INBOX.acme.abc", "_INBOX.acme.abc"));
}

#[test]
fn a_scope_stays_inside_its_tenant() {
    let scope = TenantId::new("acme").unwrap().scope();
    assert_eq!(scope.pattern(&["*", ">"]).unwrap().as_str(), "sdk.acme.*.>");
    // A token cannot smuggle another tenant in.
    assert!(scope.pattern(&["other.events", ">"]).is_err());
    assert!(scope.agent_inbox("x.y").is_err());
    assert!(scope.pattern(&[">", "x"]).is_err());
}
