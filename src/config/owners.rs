//! Who owns a cluster: flag `--owner-tag KEY` (repeatable), table `[owners]` with
//! `tag_keys` (the flag's key), `subscriptions` (id or name → address) and `fallback`.
use std::collections::BTreeMap;

use clap::Args;
use serde::Deserialize;

use crate::rules::owner::{self, OwnerPolicy};

#[derive(Debug, Clone, Default, Args)]
pub struct OwnersArgs {
    /// Tag keys that name a cluster's owner, in order (repeatable) [default: owner, Owner, owner-email, contact].
    #[arg(long = "owner-tag", value_name = "KEY")]
    pub owner_tags: Vec<String>,
}

/// The `[owners]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnersFile {
    pub tag_keys: Option<Vec<String>>,
    /// Subscription id or name → owner address.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, String>,
    pub fallback: Option<String>,
}

/// Flags over the file over defaults. Owner values are checked when mail is routed
/// (an unroutable owner goes to the admins), not here.
pub fn resolve(args: &OwnersArgs, file: &OwnersFile) -> OwnerPolicy {
    OwnerPolicy {
        tag_keys: super::problem::repeated(&args.owner_tags)
            .or_else(|| file.tag_keys.clone())
            .unwrap_or_else(owner::default_tag_keys),
        subscription_owners: file.subscriptions.clone(),
        fallback: file.fallback.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_over_file_over_defaults() {
        let f: OwnersFile = toml::from_str(
            "tag_keys = [\"team\"]\nfallback = \"ops@contoso.com\"\n[subscriptions]\n\"sub-a\" = \"a@contoso.com\"\n",
        )
        .unwrap();
        let p = resolve(&OwnersArgs::default(), &f);
        assert_eq!(p.tag_keys, ["team"]);
        assert_eq!(p.fallback.as_deref(), Some("ops@contoso.com"));
        assert_eq!(p.subscription_owners["sub-a"], "a@contoso.com");
        let args = OwnersArgs {
            owner_tags: vec!["x".into()],
        };
        assert_eq!(resolve(&args, &f).tag_keys, ["x"]);
        assert_eq!(
            resolve(&OwnersArgs::default(), &OwnersFile::default()).tag_keys,
            owner::default_tag_keys()
        );
    }
}
