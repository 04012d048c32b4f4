//! Reports in Azure Blob Storage: flag `--upload URL` and the top-level key `upload`
//! (`https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]`). A malformed URL is a
//! problem naming the flag or key; a URL with a query (a SAS) is refused without
//! showing it.
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::problem::{pick, Names, Problem};
use crate::upload::{Target, UploadSettings, DEFAULT_BLOCK_SIZE};

#[derive(Debug, Clone, Default, Args)]
pub struct UploadArgs {
    /// Upload every report file of the run to Azure Blob Storage under
    /// <prefix>/<run id>/ and <prefix>/latest/, with the job's Azure identity
    /// (https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]) [config: upload].
    #[arg(long, value_name = "URL")]
    pub upload: Option<String>,
}

/// The file's key (top level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub upload: Option<String>,
}

const UPLOAD: Names = Names {
    flag: "--upload",
    key: "upload",
};

/// Flag over file. `None` when there is no upload or the URL is wrong (a problem).
/// The Azure settings are the run's (`config::settings` fills them in).
pub fn resolve(args: &UploadArgs, file: &UploadFile, out: &mut Vec<Problem>) -> Option<UploadSettings> {
    let target = pick(
        out,
        UPLOAD,
        args.upload.as_deref().filter(|u| !u.trim().is_empty()),
        file.upload.as_deref().filter(|u| !u.trim().is_empty()),
        Target::parse,
    )
    .value()?;
    Some(UploadSettings {
        target,
        azure: crate::azure::AzureSettings::default(),
        block_size: DEFAULT_BLOCK_SIZE,
        max_attempts: crate::azure::DEFAULT_MAX_ATTEMPTS,
        backoff: Duration::from_secs(1),
    })
}
