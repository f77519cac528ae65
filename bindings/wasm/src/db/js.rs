//! Conversions between JavaScript values and the store's bytes, revisions and errors.
//!
//! Keys, values and payloads are accepted as `string` (UTF-8) or `Uint8Array`. Revisions go
//! out as `BigInt` (commit timestamps exceed 2^53) and come in as `BigInt` or a non-negative
//! integer `number`. Every failure is a JS `Error` with a string `code` (see [`error`]).
use super::core::DbError;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Milliseconds of wall-clock time: the timestamp oracle's physical clock.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> u64 {
    let t = js_sys::Date::now();
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

/// Milliseconds of wall-clock time: the timestamp oracle's physical clock.
#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A JS `Error` with `name = "StrataError"`, the given `code` and extra properties.
pub fn error_with(code: &str, message: &str, extra: &[(&str, JsValue)]) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("StrataError");
    let set = |k: &str, v: &JsValue| {
        // Setting a property on a fresh Error cannot fail.
        let _ = js_sys::Reflect::set(&e, &JsValue::from_str(k), v);
    };
    set("code", &JsValue::from_str(code));
    for (k, v) in extra {
        set(k, v);
    }
    e.into()
}

/// The JS error for a store error. Codes: `INVALID_ARGUMENT`, `WRITE_CONFLICT` (with `key`
/// and `conflictRevision`), `LOCKED` (with `key`, `lockRevision`), `COMPACTED` (with
/// `requested`, `compacted`), `STORAGE`, `CLOSED`.
pub fn error(e: &DbError) -> JsValue {
    let msg = e.to_string();
    match e {
        DbError::InvalidArgument(_) => error_with("INVALID_ARGUMENT", &msg, &[]),
        DbError::WriteConflict { key, conflict_revision } => error_with(
            "WRITE_CONFLICT",
            &msg,
            &[("key", bytes_out(key)), ("conflictRevision", JsValue::from(*conflict_revision)), ("retryable", JsValue::TRUE)],
        ),
        DbError::Locked { key, lock_revision } => {
            error_with("LOCKED", &msg, &[("key", bytes_out(key)), ("lockRevision", JsValue::from(*lock_revision)), ("retryable", JsValue::TRUE)])
        }
        DbError::Compacted { requested, compacted } => {
            error_with("COMPACTED", &msg, &[("requested", JsValue::from(*requested)), ("compacted", JsValue::from(*compacted))])
        }
        DbError::Storage(_) => error_with("STORAGE", &msg, &[]),
        DbError::Closed => error_with("CLOSED", &msg, &[]),
    }
}

/// An `INVALID_ARGUMENT` error.
pub fn invalid(message: &str) -> JsValue {
    error_with("INVALID_ARGUMENT", message, &[])
}

/// `what` as bytes: a string (UTF-8) or a `Uint8Array`.
pub fn bytes_in(v: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    // Uint8Array first: each test is a call into JS, and binary keys are the hot path.
    if let Some(a) = v.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(s) = v.as_string() {
        return Ok(s.into_bytes());
    }
    Err(invalid(&format!("{what} must be a string or a Uint8Array, not {}", type_name(v))))
}

/// An optional bound: `undefined`/`null` is `None`.
pub fn opt_bytes_in(v: &JsValue, what: &str) -> Result<Option<Vec<u8>>, JsValue> {
    if v.is_undefined() || v.is_null() {
        Ok(None)
    } else {
        bytes_in(v, what).map(Some)
    }
}

/// Bytes as a fresh `Uint8Array`.
pub fn bytes_out(b: &[u8]) -> JsValue {
    js_sys::Uint8Array::from(b).into()
}

/// An optional revision: `undefined`/`null`, a `BigInt`, or a non-negative integer `number`.
pub fn opt_revision_in(v: &JsValue, what: &str) -> Result<Option<u64>, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(n) = v.as_f64() {
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
            return Ok(Some(n as u64));
        }
        // The number as JS writes it: formatting an f64 in Rust pulls ~18 KB of float
        // printing into the .wasm.
        let shown = js_sys::Number::from(n).to_string_with_radix(10).map_or_else(|_| "that number".into(), String::from);
        return Err(invalid(&format!("{what} must be a non-negative integer, not {shown}")));
    }
    if v.is_bigint() {
        return u64::try_from(v.clone()).map(Some).map_err(|_| invalid(&format!("{what} must fit in 64 bits and not be negative")));
    }
    Err(invalid(&format!("{what} must be a BigInt or an integer, not {}", type_name(v))))
}

/// An optional count: `undefined`/`null` or a non-negative integer `number`.
pub fn opt_count_in(v: &JsValue, what: &str) -> Result<Option<usize>, JsValue> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Ok(Some(n.min(usize::MAX as f64) as usize)),
        _ => Err(invalid(&format!("{what} must be a non-negative integer"))),
    }
}

/// A property of an options object (`undefined` when `obj` is not an object).
pub fn prop(obj: &JsValue, name: &str) -> JsValue {
    if obj.is_object() {
        js_sys::Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// Sets a property on a plain object.
pub fn set(obj: &js_sys::Object, name: &str, v: &JsValue) {
    // A plain object accepts every property.
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(name), v);
}

fn type_name(v: &JsValue) -> String {
    v.js_typeof().as_string().unwrap_or_else(|| "unknown".into())
}
