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
    /// Where the container is served to readers (a static website, a private endpoint
    /// behind a portal): the admin mail links <URL>/<prefix>/<run id>/<file> instead of
    /// attaching large files [config: upload_base_url].
    #[arg(long, value_name = "URL", requires = "upload")]
    pub upload_base_url: Option<String>,
}

/// The file's key (top level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadFile {
    pub upload: Option<String>,
    pub upload_base_url: Option<String>,
}

const BASE_URL: Names = Names {
    flag: "--upload-base-url",
    key: "upload_base_url",
};

/// A base URL: http(s), no query (it would be repeated into every link), ending in `/`
/// so that names join under it.
fn base_url(raw: &str) -> Result<url::Url, String> {
    let mut u = url::Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(format!("`{raw}` must be an http(s) URL"));
    }
    if u.query().is_some() {
        return Err(
            "must not have a query string (a SAS would go into every mail); the value is not shown"
                .into(),
        );
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

const UPLOAD: Names = Names {
    flag: "--upload",
    key: "upload",
};

/// Flag over file. `None` when there is no upload or the URL is wrong (a problem).
/// The Azure settings are the run's (`config::settings` fills them in).
pub fn resolve(
    args: &UploadArgs,
    file: &UploadFile,
    out: &mut Vec<Problem>,
) -> Option<UploadSettings> {
    let target = pick(
        out,
        UPLOAD,
        args.upload.as_deref().filter(|u| !u.trim().is_empty()),
        file.upload.as_deref().filter(|u| !u.trim().is_empty()),
        Target::parse,
    )
    .value();
    let base = pick(
        out,
        BASE_URL,
        args.upload_base_url.as_deref(),
        file.upload_base_url.as_deref(),
        base_url,
    )
    .value();
    let target = target?;
    Some(UploadSettings {
        target,
        base_url: base,
        azure: crate::azure::AzureSettings::default(),
        block_size: DEFAULT_BLOCK_SIZE,
        max_attempts: crate::azure::DEFAULT_MAX_ATTEMPTS,
        backoff: Duration::from_secs(1),
    })
}
