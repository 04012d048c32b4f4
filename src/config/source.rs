//! Where the inventory comes from: flags `--inventory DIR` and `--demo`, keys
//! `inventory` and `demo` at the top of the file; Azure Resource Graph when neither.
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use super::problem::Problem;

#[derive(Debug, Clone, Default, Args)]
pub struct SourceArgs {
    /// Audit an inventory folder (clusters.json, role-assignments.json, ...) instead of Azure.
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    pub inventory: Option<PathBuf>,
    /// Audit the built-in demo tenant, served by the embedded emulator.
    #[arg(long)]
    pub demo: bool,
}

/// The file's keys (top level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    pub inventory: Option<PathBuf>,
    pub demo: Option<bool>,
}

/// Where the inventory comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Inventory(PathBuf),
    Demo,
    /// Azure Resource Graph, the default.
    Live,
}

/// `--demo`, else `--inventory`, else the file's `inventory`, else its `demo`.
pub fn resolve(args: &SourceArgs, file: &SourceFile) -> Source {
    if args.demo {
        Source::Demo
    } else if let Some(dir) = args.inventory.as_ref().or(file.inventory.as_ref()) {
        Source::Inventory(dir.clone())
    } else if file.demo == Some(true) {
        Source::Demo
    } else {
        Source::Live
    }
}

/// What a run finds out only when it reads the inventory (`check-config`).
pub fn check_files(file: &SourceFile, out: &mut Vec<Problem>) {
    if let Some(dir) = file.inventory.as_ref().filter(|d| !d.is_dir()) {
        out.push(Problem::new(
            "inventory",
            format!("{} is not a folder", dir.display()),
        ));
    }
    // A run would refuse it; check-config must not say "ok" first.
    if cfg!(not(feature = "emulator")) && file.demo == Some(true) {
        out.push(Problem::new(
            "demo",
            "this build has no demo tenant (built without the `emulator` feature)".to_string(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn flags_over_file() {
        let inv = SourceArgs {
            inventory: Some("a".into()),
            demo: false,
        };
        let f = file("inventory = \"b\"\ndemo = true\n");
        assert_eq!(resolve(&inv, &f), Source::Inventory("a".into()));
        assert_eq!(
            resolve(&SourceArgs::default(), &f),
            Source::Inventory("b".into())
        );
        assert_eq!(
            resolve(&SourceArgs::default(), &file("demo = true")),
            Source::Demo
        );
        assert_eq!(resolve(&SourceArgs::default(), &file("")), Source::Live);
        let mut out = vec![];
        check_files(&file("inventory = \"/nonexistent/inv\""), &mut out);
        assert_eq!(out[0].key, "inventory");
    }
}
