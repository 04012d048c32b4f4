//! The report model's domain values as types. Each one serializes to exactly the
//! string `report.json`, the CSVs, `state.json`, the mail and the templates have
//! always used (`service_principal`, `addon:omsagent`, `too_wide` ...), so the files
//! do not change; `as_str`, [`std::fmt::Display`] and [`std::str::FromStr`] round-trip
//! through the same strings.
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::catalogue::Severity;

pub use crate::history::ControlPlaneIdentity;
pub(crate) use crate::named::named_enum;
pub use crate::named::Named;

named_enum! {
    /// What the role checks made of an identity's expected role or actual assignment
    /// (`status` in role-assignments.csv).
    pub enum RoleCheckStatus {
        /// Held at the documented scope.
        Ok = "ok",
        /// Documented and required, not held.
        Missing = "missing",
        /// Held, not documented.
        Excess = "excess",
        /// Documented, held at a wider scope.
        TooWide = "too_wide",
        /// An assignment of an add-on identity the baseline documents no roles for.
        NotDocumented = "not_documented",
    }
}

/// Which identity of a cluster a finding or role check is about: `control_plane`,
/// `kubelet` or `addon:<key>` (the add-on key as the cluster spells it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityKey {
    ControlPlane,
    Kubelet,
    Addon(String),
}

const ADDON_PREFIX: &str = "addon:";

impl IdentityKey {
    pub fn addon(key: &str) -> IdentityKey {
        IdentityKey::Addon(key.to_string())
    }

    /// The string form in two parts (a fixed prefix and the add-on key), so comparing
    /// and matching need no allocation.
    fn parts(&self) -> (&'static str, &str) {
        match self {
            IdentityKey::ControlPlane => ("control_plane", ""),
            IdentityKey::Kubelet => ("kubelet", ""),
            IdentityKey::Addon(k) => (ADDON_PREFIX, k),
        }
    }

    /// `control_plane`, `kubelet` or `addon:<key>`.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            IdentityKey::Addon(k) => Cow::Owned(format!("{ADDON_PREFIX}{k}")),
            _ => Cow::Borrowed(self.parts().0),
        }
    }

    /// Whether `s` names this identity, ignoring ASCII case (suppressions match so).
    pub fn eq_ignore_ascii_case(&self, s: &str) -> bool {
        let (a, b) = self.parts();
        s.len() == a.len() + b.len()
            && s.is_char_boundary(a.len())
            && s[..a.len()].eq_ignore_ascii_case(a)
            && s[a.len()..].eq_ignore_ascii_case(b)
    }

    /// How a message names it: `control-plane`, `kubelet`, `add-on <key>`.
    pub fn label(&self) -> Cow<'_, str> {
        match self {
            IdentityKey::ControlPlane => Cow::Borrowed("control-plane"),
            IdentityKey::Kubelet => Cow::Borrowed("kubelet"),
            IdentityKey::Addon(k) => Cow::Owned(format!("add-on {k}")),
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.parts();
        f.write_str(a)?;
        f.write_str(b)
    }
}

impl FromStr for IdentityKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "control_plane" => Ok(IdentityKey::ControlPlane),
            "kubelet" => Ok(IdentityKey::Kubelet),
            // Any add-on key, even an empty one: the inventory may hold one.
            _ => match s.strip_prefix(ADDON_PREFIX) {
                Some(k) => Ok(IdentityKey::addon(k)),
                None => Err(format!(
                    "unknown identity `{s}` (expected `control_plane`, `kubelet` or `addon:<key>`)"
                )),
            },
        }
    }
}

/// By the string form, as the findings were sorted when it was a string.
impl Ord for IdentityKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let ((a1, a2), (b1, b2)) = (self.parts(), other.parts());
        a1.bytes()
            .chain(a2.bytes())
            .cmp(b1.bytes().chain(b2.bytes()))
    }
}

impl PartialOrd for IdentityKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for IdentityKey {
    fn eq(&self, other: &str) -> bool {
        let (a, b) = self.parts();
        other.len() == a.len() + b.len() && other.starts_with(a) && other.ends_with(b)
    }
}

impl PartialEq<&str> for IdentityKey {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for IdentityKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IdentityKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Unsuppressed findings per severity (`summary.findings`). The fields are declared
/// in name order: the JSON is the map by severity name it replaced, key for key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub info: usize,
    pub low: usize,
    pub medium: usize,
}

impl SeverityCounts {
    pub fn get(&self, s: Severity) -> usize {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    pub fn get_mut(&mut self, s: Severity) -> &mut usize {
        match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }

    /// (severity, count), most severe first.
    pub fn iter(&self) -> impl Iterator<Item = (Severity, usize)> + '_ {
        Severity::ALL.into_iter().map(|s| (s, self.get(s)))
    }

    pub fn total(&self) -> usize {
        self.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::history::MigrationStatus;
    use crate::rules::classify::KubeletIdentity;
    use crate::rules::evaluated::Family;

    fn round_trips<T>()
    where
        T: Named + fmt::Display + FromStr + Serialize + for<'de> Deserialize<'de> + fmt::Debug,
        <T as FromStr>::Err: fmt::Debug,
    {
        for v in T::ALL.iter().copied() {
            assert_eq!(v.to_string(), v.as_str());
            assert_eq!(v.as_str().parse::<T>().unwrap(), v);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        }
        assert!("nonsense".parse::<T>().is_err());
        // As map keys: the order and spelling of the string-keyed maps they replaced.
        let typed: BTreeMap<T, usize> = T::ALL.iter().map(|v| (*v, 1)).collect();
        let strings: BTreeMap<&str, usize> = T::ALL.iter().map(|v| (v.as_str(), 1)).collect();
        let json = serde_json::to_string_pretty(&typed).unwrap();
        assert_eq!(json, serde_json::to_string_pretty(&strings).unwrap());
        assert_eq!(
            serde_json::from_str::<BTreeMap<T, usize>>(&json).unwrap(),
            typed
        );
    }

    #[test]
    fn named_values_round_trip_through_their_strings() {
        round_trips::<ControlPlaneIdentity>();
        round_trips::<KubeletIdentity>();
        round_trips::<MigrationStatus>();
        round_trips::<RoleCheckStatus>();
        round_trips::<Family>();
        round_trips::<crate::rules::suppress::EntryState>();
        assert_eq!(
            ControlPlaneIdentity::ALL
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>(),
            ["service_principal", "system_assigned", "user_assigned"]
        );
        assert_eq!(
            RoleCheckStatus::ALL
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>(),
            ["ok", "missing", "excess", "too_wide", "not_documented"]
        );
        assert!(RoleCheckStatus::TooWide == "too_wide");
    }

    #[test]
    fn identity_keys_round_trip_sort_and_match_as_their_strings() {
        let keys = [
            IdentityKey::ControlPlane,
            IdentityKey::Kubelet,
            IdentityKey::addon("omsAgent"),
            IdentityKey::addon("a"),
            IdentityKey::addon("zeta"),
            IdentityKey::addon("addon:x"),
            IdentityKey::addon(""),
        ];
        for k in &keys {
            let s = k.to_string();
            assert_eq!(k.as_str(), s);
            assert_eq!(&s.parse::<IdentityKey>().unwrap(), k);
            assert!(*k == *s.as_str() && k.eq_ignore_ascii_case(&s.to_uppercase()));
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(&serde_json::from_str::<IdentityKey>(&json).unwrap(), k);
        }
        assert_eq!(IdentityKey::addon("omsAgent").to_string(), "addon:omsAgent");
        assert!(!IdentityKey::Kubelet.eq_ignore_ascii_case("kubelet2"));
        assert!(!IdentityKey::addon("x").eq_ignore_ascii_case("addon:"));
        // A character across the prefix's end is no match (and no panic).
        assert!(!IdentityKey::addon("ab").eq_ignore_ascii_case("addon\u{e9}x"));
        for bad in ["", "Addon:x", "Control_plane", "pod"] {
            assert!(bad.parse::<IdentityKey>().is_err(), "{bad}");
        }
        let mut typed = keys.to_vec();
        typed.sort();
        let mut strings: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        strings.sort();
        assert_eq!(
            typed.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            strings
        );
        assert_eq!(IdentityKey::addon("x").label(), "add-on x");
        assert_eq!(IdentityKey::ControlPlane.label(), "control-plane");
    }

    #[test]
    fn severity_counts_serialize_as_the_map_by_name() {
        let mut c = SeverityCounts::default();
        *c.get_mut(Severity::High) += 2;
        *c.get_mut(Severity::Info) += 1;
        let map: BTreeMap<&str, usize> = Severity::ALL
            .iter()
            .map(|s| (s.as_str(), c.get(*s)))
            .collect();
        let json = serde_json::to_string_pretty(&c).unwrap();
        assert_eq!(json, serde_json::to_string_pretty(&map).unwrap());
        assert_eq!(serde_json::from_str::<SeverityCounts>(&json).unwrap(), c);
        assert_eq!(c.total(), 3);
        assert_eq!(
            c.iter().map(|(s, _)| s).collect::<Vec<_>>(),
            Severity::ALL.to_vec()
        );
    }
}
