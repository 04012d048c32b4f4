//! Small typed accessors over one JSON element, with errors that name the path.
use super::small_map::SmallMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub type Obj = Map<String, Value>;

// Input limits. Every string of an element is copied into the report files and mails,
// several times over (a 200 MB cluster name once made 3.7 GB of output and 4.3 GB of
// memory), so an element with a value far beyond anything Azure produces is skipped
// and counted like any malformed one, its reason naming the field (the skip names file
// and index). Checking costs one length comparison per value read: linear in the input.
//
// | what                                                      | limit    | Azure's own limit                          |
// |-----------------------------------------------------------|----------|--------------------------------------------|
// | any string field: names, ids, scopes, types, versions,    | 4 KiB    | names ≤ 260 chars (cluster 63, resource    |
// | states, times, client and principal ids                   |          | group 90, pool 12), resource ids a few     |
// |                                                           |          | hundred chars                              |
// | keys of maps (tag names, add-on names, identity ids)      | 4 KiB    | tag names 512 chars                        |
// | values of maps: tags, pod labels, add-on `config`         | 16 KiB   | tag values 256 chars; config free-form.    |
// |                                                           |          | Hand-made inventories carry longer tags;   |
// |                                                           |          | only the owner tag reaches the output.     |
// | entries of one list or map (tags, pools, add-ons, ...)    | 1,000    | 50 tags, 100 node pools per cluster        |

/// Longest string field, in bytes (see the table above).
pub const MAX_FIELD_BYTES: usize = 4 * 1024;
/// Longest value of a string map (tag, pod label, add-on `config` value), in bytes.
pub const MAX_MAP_VALUE_BYTES: usize = 16 * 1024;
/// Most entries of one list or map in an element.
pub const MAX_ENTRIES: usize = 1000;

/// An element-level parse error: which field, what was wrong.
pub fn err(path: &str, what: &str) -> String {
    format!("`{path}` {what}")
}

/// `Err` naming `path` when `s` is longer than `max` bytes.
pub fn within(s: &str, max: usize, path: &str) -> Result<(), String> {
    if s.len() > max {
        return Err(err(
            path,
            &format!("is {} bytes long, over the limit of {max} bytes", s.len()),
        ));
    }
    Ok(())
}

/// `Err` naming `path` when a list or map has more than [`MAX_ENTRIES`] entries.
pub fn few(n: usize, path: &str) -> Result<(), String> {
    if n > MAX_ENTRIES {
        return Err(err(
            path,
            &format!("has {n} entries, over the limit of {MAX_ENTRIES}"),
        ));
    }
    Ok(())
}

/// A map key as a path segment in messages: keys are bounded, but a 4 KiB one would
/// still drown the message, so only its start is shown.
fn key_shown(key: &str) -> String {
    const SHOWN: usize = 64;
    match key.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &key[..at]),
        None => key.to_string(),
    }
}

/// The entries of a map field that is read whole (add-ons, user-assigned identities):
/// at most [`MAX_ENTRIES`], each key at most [`MAX_FIELD_BYTES`].
pub fn entries<'a>(
    m: &'a Obj,
    path: &str,
) -> Result<impl Iterator<Item = (&'a String, &'a Value)>, String> {
    few(m.len(), path)?;
    if let Some(k) = m.keys().find(|k| k.len() > MAX_FIELD_BYTES) {
        return Err(err(
            path,
            &format!(
                "has a key {} bytes long, over the limit of {MAX_FIELD_BYTES} bytes",
                k.len()
            ),
        ));
    }
    Ok(m.iter())
}

/// A field that may be absent or null; wrong type is an error, and so is a string
/// longer than [`MAX_FIELD_BYTES`].
pub fn opt_str(o: &Obj, key: &str, path: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            within(s, MAX_FIELD_BYTES, &join(path, key))?;
            Ok(Some(s.clone()))
        }
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

/// A list field, absent or null as empty; at most [`MAX_ENTRIES`] entries.
pub fn opt_array<'a>(o: &'a Obj, key: &str, path: &str) -> Result<&'a [Value], String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => {
            few(a.len(), &join(path, key))?;
            Ok(a)
        }
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

/// A string map (tags, add-on config, pod labels). Non-string values are rendered as
/// JSON text. Bounded as [`entries`]; values at most [`MAX_MAP_VALUE_BYTES`].
pub fn string_map(o: &Obj, key: &str, path: &str) -> Result<SmallMap<String>, String> {
    let Some(m) = opt_obj(o, key, path)? else {
        return Ok(SmallMap::new());
    };
    let here = join(path, key);
    entries(m, &here)?
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            within(&s, MAX_MAP_VALUE_BYTES, &join(&here, &key_shown(k)))?;
            Ok((k.clone(), s))
        })
        .collect()
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
