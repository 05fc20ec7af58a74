//! Holds `proto/` against the committed descriptor snapshot `proto/snapshot.json` and
//! fails on breaking changes (the rules of `buf breaking` at WIRE_JSON level: removed,
//! renumbered, retyped or renamed fields, reused numbers, removed enum values). The
//! check itself is `sdk_codec::compat`, which `sdk schema check` runs too.
//!
//! After a compatible change (a new field), refresh the snapshot:
//! `UPDATE_PROTO_SNAPSHOT=1 scripts/test -p sdk-codec --test proto_breaking`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sdk_codec::compat::{Field, MessageShape, Snapshot, breaking};

fn current() -> Snapshot {
    Snapshot::current().unwrap()
}

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/snapshot.json")
}

#[test]
fn proto_has_no_breaking_change_against_the_snapshot() {
    let now = current();
    let path = snapshot_path();
    if std::env::var_os("UPDATE_PROTO_SNAPSHOT").is_some() {
        let committed: Option<Snapshot> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(old) = committed {
            let broken = breaking(&old, &now);
            assert!(
                broken.is_empty(),
                "refusing to refresh over breaking changes:\n{}",
                broken.join("\n")
            );
        }
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}); create it with UPDATE_PROTO_SNAPSHOT=1",
            path.display()
        )
    });
    let old: Snapshot = serde_json::from_str(&text).unwrap();
    let broken = breaking(&old, &now);
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    assert_eq!(
        old, now,
        "proto/ changed compatibly; refresh the snapshot with \
         UPDATE_PROTO_SNAPSHOT=1 scripts/test -p sdk-codec --test proto_breaking"
    );
}

mod checker {
    use super::*;

    fn with(edit: impl FnOnce(&mut Snapshot)) -> Vec<String> {
        let old = current();
        let mut new = old.clone();
        edit(&mut new);
        breaking(&old, &new)
    }

    fn chunk(s: &mut Snapshot) -> &mut MessageShape {
        s.messages.get_mut("sdk.v1.DocumentChunk").unwrap()
    }

    #[test]
    fn an_unchanged_schema_is_not_breaking() {
        assert!(with(|_| {}).is_empty());
    }

    #[test]
    fn a_new_field_is_not_breaking() {
        assert!(
            with(|s| chunk(s).fields.push(Field {
                name: "language".into(),
                json_name: "language".into(),
                number: 12,
                label: "Optional".into(),
                r#type: "String".into(),
            }))
            .is_empty()
        );
    }

    #[test]
    fn a_removed_field_is_breaking_and_says_how_to_version_it() {
        let out = with(|s| chunk(s).fields.retain(|f| f.name != "text"));
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("breaking change in sdk.v1.DocumentChunk (still at version 1): field text (4) was removed. A breaking change needs a new version"), "{}", out[0]);
        assert!(out[0].contains("upcaster"), "{}", out[0]);
    }

    #[test]
    fn renumbered_retyped_and_renamed_fields_are_breaking() {
        let out = with(|s| {
            let c = chunk(s);
            c.fields
                .iter_mut()
                .find(|f| f.name == "text")
                .unwrap()
                .number = 40;
            c.fields
                .iter_mut()
                .find(|f| f.name == "chunk_index")
                .unwrap()
                .r#type = "Int64".into();
            let f = c
                .fields
                .iter_mut()
                .find(|f| f.name == "token_count")
                .unwrap();
            f.name = "tokens".into();
            f.json_name = "tokens".into();
        });
        let text = out.join("\n");
        assert!(
            text.contains("field text was renumbered from 4 to 40"),
            "{text}"
        );
        assert!(
            text.contains(
                "field chunk_index (3) changed type from Optional Uint32 to Optional Int64"
            ),
            "{text}"
        );
        assert!(
            text.contains("field token_count (10) was renamed to tokens"),
            "{text}"
        );
    }

    #[test]
    fn reusing_a_reserved_number_is_breaking() {
        let out = with(|s| {
            s.messages
                .get_mut("sdk.v1.StatusUpdate")
                .unwrap()
                .fields
                .push(Field {
                    name: "percent".into(),
                    json_name: "percent".into(),
                    number: 4,
                    label: "Optional".into(),
                    r#type: "Uint32".into(),
                });
        });
        assert!(
            out.join("\n")
                .contains("field percent reuses reserved number 4"),
            "{out:?}"
        );
    }

    #[test]
    fn a_removed_enum_value_is_breaking() {
        let out = with(|s| {
            s.enums
                .get_mut("sdk.v1.TaskStatus")
                .unwrap()
                .remove("TASK_STATUS_CANCELLED");
        });
        assert_eq!(
            out,
            vec![
                "enum value sdk.v1.TaskStatus.TASK_STATUS_CANCELLED was removed or renamed (JSON carries enum names)"
            ]
        );
    }

    #[test]
    fn a_breaking_change_with_a_version_bump_is_accepted() {
        let out = with(|s| {
            let c = chunk(s);
            c.fields.retain(|f| f.name != "text");
            c.version += 1;
        });
        assert!(out.is_empty(), "{out:?}");
    }
}
