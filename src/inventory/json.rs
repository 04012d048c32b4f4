//! Small typed accessors over one JSON element, with errors that name the path.
use super::small_map::SmallMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub type Obj = Map<String, Value>;

/// An element-level parse error: which field, what was wrong.
pub fn err(path: &str, what: &str) -> String {
    format!("`{path}` {what}")
}

/// A field that may be absent or null; wrong type is an error.
pub fn opt_str(o: &Obj, key: &str, path: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(&join(path, key), "is not a string")),
    }
}

/// A required, non-empty string.
pub fn req_str(o: &Obj, key: &str, path: &str) -> Result<String, String> {
    match opt_str(o, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(err(&join(path, key), "is missing")),
    }
}

pub fn opt_bool(o: &Obj, key: &str, path: &str) -> Result<Option<bool>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        // az and ARM sometimes carry booleans as strings ("true"/"True").
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(err(&join(path, key), "is not a boolean")),
    }
}

pub fn opt_obj<'a>(o: &'a Obj, key: &str, path: &str) -> Result<Option<&'a Obj>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(err(&join(path, key), "is not an object")),
    }
}

pub fn opt_array<'a>(o: &'a Obj, key: &str, path: &str) -> Result<&'a [Value], String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(err(&join(path, key), "is not an array")),
    }
}

pub fn as_obj<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, String> {
    v.as_object().ok_or_else(|| err(path, "is not an object"))
}

/// A timestamp in RFC 3339; absent, null or unparsable (Azure uses several forms) is `None`
/// only when absent — an unparsable value is an error.
pub fn opt_time(o: &Obj, key: &str, path: &str) -> Result<Option<DateTime<Utc>>, String> {
    match opt_str(o, key, path)? {
        None => Ok(None),
        Some(s) => parse_time(&s)
            .map(Some)
            .ok_or_else(|| err(&join(path, key), "is not an RFC 3339 time")),
    }
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Azure sometimes omits the offset: treat as UTC.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// A string map (tags, add-on config). Non-string values are rendered as JSON text.
pub fn string_map(o: &Obj, key: &str, path: &str) -> Result<SmallMap<String>, String> {
    let Some(m) = opt_obj(o, key, path)? else {
        return Ok(SmallMap::new());
    };
    Ok(m.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect())
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
