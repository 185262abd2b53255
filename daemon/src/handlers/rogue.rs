//! What a modified client can do to the household document: raw writes with no checks.
//! Only for tests that play the attacker, behind `HEARTH_TEST_ROGUE=1`.

use super::*;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjType, ReadDoc, ScalarValue};

fn allowed() -> Result<(), ApiError> {
    if std::env::var_os("HEARTH_TEST_ROGUE").is_some_and(|v| v == "1") {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Invalid,
            "raw writes are for tests that play a rogue device",
            "nothing was changed; start hearthd with HEARTH_TEST_ROGUE=1 in a test",
        ))
    }
}

fn collection(docs: &Docs, name: &str) -> Result<automerge::ObjId, ApiError> {
    match docs.household.automerge().get(automerge::ROOT, name) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Ok(id),
        _ => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no collection `{name}`"),
            "name one of the household's collections",
        )),
    }
}

fn scalar(value: &Value) -> ScalarValue {
    match value {
        Value::Bool(b) => ScalarValue::Boolean(*b),
        Value::Number(n) => n
            .as_i64()
            .map(ScalarValue::Int)
            .unwrap_or_else(|| ScalarValue::F64(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => ScalarValue::Str(s.as_str().into()),
        Value::Null => ScalarValue::Null,
        other => ScalarValue::Str(other.to_string().into()),
    }
}

pub(super) fn put(
    docs: &mut Docs,
    name: &str,
    key: &str,
    fields: &serde_json::Map<String, Value>,
    now: Millis,
) -> Result<Outcome, ApiError> {
    allowed()?;
    let coll = collection(docs, name)?;
    // `$actor_key` (hex): write under an actor id that claims another device's key,
    // as a client that tries to pass its change off as someone else's would.
    let own_actor = docs.household.automerge().get_actor().clone();
    if let Some(hex) = fields.get("$actor_key").and_then(Value::as_str) {
        let key = hearth_core::roster::parse_key(hex)
            .map_err(|_| internal_error("`$actor_key` is not a device key"))?;
        docs.household
            .automerge_mut()
            .set_actor(hearth_core::provenance::actor_for(
                &hearth_core::identity::DeviceId::from_public_key(&key),
                rand::random(),
            ));
    }
    let written = docs.household.automerge_mut().transact_with(
        |_| CommitOptions::default().with_time(now / 1000),
        |tx| -> Result<(), automerge::AutomergeError> {
            // `$value`: one scalar in place of the record, as compact records are.
            if let Some(value) = fields.get("$value") {
                tx.put(&coll, key, scalar(value))?;
                return Ok(());
            }
            // `$append`: text added to the scalar already there, as publishing a
            // sealed answer's key does.
            if let Some(tail) = fields.get("$append").and_then(Value::as_str) {
                let current = match tx.get(&coll, key)? {
                    Some((automerge::Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Str(text) => text.to_string(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                tx.put(&coll, key, format!("{current}{tail}"))?;
                return Ok(());
            }
            let obj = match tx.get(&coll, key)? {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => tx.put_object(&coll, key, ObjType::Map)?,
            };
            for (field, value) in fields.iter().filter(|(f, _)| !f.starts_with('$')) {
                tx.put(&obj, field.as_str(), scalar(value))?;
            }
            Ok(())
        },
    );
    docs.household.automerge_mut().set_actor(own_actor);
    written.map_err(|f| internal_error(&f.error.to_string()))?;
    Ok(Outcome::wrote(Value::Null, DocKind::Household, "rogue"))
}

/// Whether this daemon plays a rogue device: it then applies whatever peers send
/// without checking who wrote it, and so passes forged changes on, as a modified
/// client could.
pub(crate) fn relays_unchecked() -> bool {
    static ROGUE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROGUE.get_or_init(|| allowed().is_ok())
}

pub(super) fn delete(
    docs: &mut Docs,
    name: &str,
    key: &str,
    now: Millis,
) -> Result<Outcome, ApiError> {
    allowed()?;
    let coll = collection(docs, name)?;
    docs.household
        .automerge_mut()
        .transact_with(
            |_| CommitOptions::default().with_time(now / 1000),
            |tx| tx.delete(&coll, key),
        )
        .map_err(|f| internal_error(&f.error.to_string()))?;
    Ok(Outcome::wrote(Value::Null, DocKind::Household, "rogue"))
}

fn internal_error(message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Internal,
        format!("the raw write failed: {message}"),
        "nothing was changed",
    )
}
