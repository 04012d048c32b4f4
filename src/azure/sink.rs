//! Where pages go: the inventory [`Loader`], and with `--save-inventory` the same
//! rows, byte for byte, into an inventory folder written as they stream in.
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde_json::value::RawValue;
use serde_json::Value;

use super::arg::PageMeta;
use super::paging::Page;
use crate::inventory::{read, Inventory, Kind, Loader};

const RESOURCE_GROUP_TYPE: &str = "microsoft.resources/subscriptions/resourcegroups";
const REGISTRY_TYPE: &str = "microsoft.containerregistry/registries";

/// `{"data": [ ... ]}` written one row at a time into `<name>.partial`, renamed at the end.
struct ArrayFile {
    w: BufWriter<File>,
    tmp: PathBuf,
    path: PathBuf,
    rows: usize,
}

impl ArrayFile {
    fn create(path: PathBuf) -> anyhow::Result<ArrayFile> {
        let tmp = path.with_extension("json.partial");
        let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(256 * 1024, f);
        w.write_all(b"{\"data\": [")?;
        Ok(ArrayFile {
            w,
            tmp,
            path,
            rows: 0,
        })
    }

    fn push(&mut self, raw: &str) -> std::io::Result<()> {
        self.w
            .write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
        self.w.write_all(raw.as_bytes())?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.w.write_all(b"\n]}\n")?;
        let f = self.w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.path.display())
        })?;
        Ok(())
    }
}

/// The collected rows.
pub struct Sink {
    loader: Loader,
    files: HashMap<&'static str, ArrayFile>,
    save_dir: Option<PathBuf>,
    save_error: Option<String>,
    next_index: HashMap<&'static str, usize>,
}

impl Sink {
    /// With `save`, creates the folder and one file per kind (so a replay reads the same set).
    pub fn new(save: Option<&Path>) -> anyhow::Result<Sink> {
        let mut files = HashMap::new();
        if let Some(dir) = save {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for kind in [
                Kind::Subscriptions,
                Kind::ResourceGroups,
                Kind::Clusters,
                Kind::Registries,
                Kind::RoleAssignments,
            ] {
                files.insert(
                    kind.file_name(),
                    ArrayFile::create(dir.join(kind.file_name()))?,
                );
            }
        }
        Ok(Sink {
            loader: Loader::new(),
            files,
            save_dir: save.map(Path::to_path_buf),
            save_error: None,
            next_index: HashMap::new(),
        })
    }

    /// Adds one page's rows; `source` names the query in skipped-row records.
    pub fn add_rows(
        &mut self,
        kind: Kind,
        source: &'static str,
        raws: &[&RawValue],
        values: &[Value],
    ) {
        for (raw, v) in raws.iter().zip(values) {
            let i = self.next_index.entry(source).or_default();
            let index = *i;
            *i += 1;
            self.loader.add(kind, source, index, v);
            if !self.files.is_empty() {
                let file = match (kind, read::row_type(v).as_deref()) {
                    (Kind::Subscriptions, Some(RESOURCE_GROUP_TYPE)) => {
                        Kind::ResourceGroups.file_name()
                    }
                    (Kind::Clusters, Some(REGISTRY_TYPE)) => Kind::Registries.file_name(),
                    (k, _) => k.file_name(),
                };
                if let Some(f) = self.files.get_mut(file) {
                    if let Err(e) = f.push(raw.get()) {
                        self.save_error
                            .get_or_insert_with(|| format!("writing {file}: {e}"));
                    }
                }
            }
        }
    }

    /// Every cluster page is in: from here on only cluster identities' role
    /// assignments are kept (see [`Loader::clusters_complete`]).
    pub fn clusters_complete(&mut self) {
        self.loader.clusters_complete();
    }

    pub fn gap(&mut self, scope: String, reason: String) {
        self.loader.gap(scope, reason);
    }

    /// Closes the saved files and returns the inventory.
    pub fn finish(self) -> anyhow::Result<Inventory> {
        if let Some(e) = self.save_error {
            anyhow::bail!("--save-inventory: {e}");
        }
        for (_, f) in self.files {
            f.finish()?;
        }
        if let Some(dir) = &self.save_dir {
            tracing::info!(dir = %dir.display(), "inventory saved");
        }
        Ok(self.loader.finish())
    }
}

/// Parses one Resource Graph reply and hands its rows to the sink. Rows are parsed
/// outside the lock; the lock is held once per page.
pub fn ingest_page(
    sink: &Mutex<Sink>,
    kind: Kind,
    source: &'static str,
    body: &[u8],
) -> Result<PageMeta, String> {
    let page: Page = serde_json::from_slice(body)
        .map_err(|e| format!("reply is not a Resource Graph page: {e}"))?;
    let values: Vec<Value> = page
        .data
        .iter()
        .map(|r| serde_json::from_str(r.get()).unwrap_or(Value::Null))
        .collect();
    sink.lock()
        .unwrap_or_else(|p| p.into_inner())
        .add_rows(kind, source, &page.data, &values);
    Ok(PageMeta {
        truncated: page.truncated(),
        skip_token: page.skip_token,
        rows: values.len() as u64,
        total_records: page.total_records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"{"totalRecords":3,"count":3,"resultTruncated":"false","data":[
        {"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1","name":"c1","type":"microsoft.containerservice/managedclusters","location":"westeurope","resourceGroup":"rg","subscriptionId":"6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","tags":{"owner":"a@example.com"},"identity":{"type":"SystemAssigned","principalId":"p1","tenantId":"t1"},"systemData":null,
         "properties":{"servicePrincipalProfile":{"clientId":"msi"},"identityProfile":{"kubeletidentity":{"resourceId":"/x","clientId":"k","objectId":"o"}},"agentPoolProfiles":[{"name":"np1","mode":"System"}],"nodeResourceGroup":"MC_rg_c1"}},
        {"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/bad","name":42,"type":"microsoft.containerservice/managedclusters","properties":{}},
        {"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr","name":"acr","type":"microsoft.containerregistry/registries"}
    ]}"#;

    #[test]
    fn a_page_of_projected_rows_reaches_the_loader_and_the_saved_folder() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Mutex::new(Sink::new(Some(dir.path())).unwrap());
        let meta = ingest_page(&sink, Kind::Clusters, "arg:clusters", PAGE.as_bytes()).unwrap();
        assert_eq!(
            meta,
            PageMeta {
                skip_token: None,
                truncated: false,
                rows: 3,
                total_records: Some(3)
            }
        );
        let inv = sink.into_inner().unwrap().finish().unwrap();
        assert_eq!(inv.clusters.len(), 1);
        assert_eq!(inv.clusters[0].name, "c1");
        assert_eq!(inv.clusters[0].pools[0].name, "np1");
        assert_eq!(inv.registries.len(), 1);
        assert_eq!(inv.coverage.skipped_rows.len(), 1);
        assert_eq!(inv.coverage.skipped_rows[0].source, "arg:clusters");
        assert_eq!(inv.coverage.skipped_rows[0].index, 1);
        // The saved folder replays to the same rows.
        let replay = crate::inventory::folder::read_folder(dir.path()).unwrap();
        assert_eq!(replay.clusters, inv.clusters);
        assert_eq!(replay.registries, inv.registries);
        assert_eq!(replay.coverage.skipped_rows.len(), 1);
        assert!(!dir.path().join("clusters.json.partial").exists());
    }

    #[test]
    fn flattened_role_assignments_and_resource_containers_are_accepted() {
        let sink = Mutex::new(Sink::new(None).unwrap());
        let ra = r#"{"data":[{"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/providers/Microsoft.Authorization/roleAssignments/r1","principalId":"p1","principalType":"ServicePrincipal","roleDefinitionId":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7","scope":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","createdOn":null,"principalName":null,"roleDefinitionName":null}]}"#;
        ingest_page(
            &sink,
            Kind::RoleAssignments,
            "arg:role-assignments",
            ra.as_bytes(),
        )
        .unwrap();
        let rc = r#"{"data":[{"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","name":"Payments","type":"microsoft.resources/subscriptions","subscriptionId":"6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","tenantId":"t","tags":{},"state":"Enabled"},
            {"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg","name":"rg","type":"microsoft.resources/subscriptions/resourcegroups","subscriptionId":"6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","tenantId":"t","tags":{"owner":"x"},"state":null}]}"#;
        ingest_page(
            &sink,
            Kind::Subscriptions,
            "arg:subscriptions",
            rc.as_bytes(),
        )
        .unwrap();
        let inv = sink.into_inner().unwrap().finish().unwrap();
        assert!(inv.coverage.is_complete(), "{:?}", inv.coverage);
        assert_eq!(
            &*inv.role_assignments[0].role_guid,
            "acdd72a7-3385-48ef-bd42-f606fba81ae7"
        );
        assert_eq!(
            &*inv.role_assignments[0].scope,
            "/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01"
        );
        assert_eq!(inv.subscriptions[0].name, "Payments");
        assert_eq!(inv.subscriptions[0].state.as_deref(), Some("Enabled"));
        assert_eq!(inv.resource_groups[0].tags["owner"], "x");
    }

    #[test]
    fn not_a_page_is_an_error() {
        let sink = Mutex::new(Sink::new(None).unwrap());
        let e = ingest_page(&sink, Kind::Clusters, "arg:clusters", b"{\"dat").unwrap_err();
        assert!(e.contains("not a Resource Graph page"), "{e}");
    }
}
