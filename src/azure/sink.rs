//! Where pages go: the inventory [`Loader`], and with `--save-inventory` the same
//! rows, byte for byte, into an inventory folder written as they stream in.
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use serde::de::IgnoredAny;
use serde::Deserialize;
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
        // A leftover (or a planted link) is removed, never written through: the new file
        // is created with O_EXCL and mode 0600.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", tmp.display()))
            }
            _ => {}
        }
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(crate::secure_fs::FILE_MODE);
        }
        let f = open
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
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
            crate::secure_fs::create_dir_all(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
            for kind in [
                Kind::Subscriptions,
                Kind::ResourceGroups,
                Kind::Clusters,
                Kind::Registries,
                Kind::RoleAssignments,
                Kind::RoleDefinitions,
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
            let index = self.next_index(source);
            self.loader.add(kind, source, index, v);
            if !self.files.is_empty() {
                let file = match (kind, read::row_type(v).as_deref()) {
                    (Kind::Subscriptions, Some(RESOURCE_GROUP_TYPE)) => {
                        Kind::ResourceGroups.file_name()
                    }
                    (Kind::Clusters, Some(REGISTRY_TYPE)) => Kind::Registries.file_name(),
                    (k, _) => k.file_name(),
                };
                self.save(file, raw);
            }
        }
    }

    /// A row the loader has already counted and dropped: only saved.
    fn add_unread(&mut self, kind: Kind, source: &'static str, raw: &RawValue) {
        self.next_index(source);
        self.save(kind.file_name(), raw);
    }

    fn next_index(&mut self, source: &'static str) -> usize {
        let i = self.next_index.entry(source).or_default();
        *i += 1;
        *i - 1
    }

    /// Appends a row to a `--save-inventory` file (none without it).
    fn save(&mut self, file: &'static str, raw: &RawValue) {
        if let Some(f) = self.files.get_mut(file) {
            if let Err(e) = f.push(raw.get()) {
                self.save_error
                    .get_or_insert_with(|| format!("writing {file}: {e}"));
            }
        }
    }

    /// Every cluster page is in: from here on only cluster identities' role
    /// assignments are kept (see [`Loader::clusters_complete`]).
    pub fn clusters_complete(&mut self) {
        self.loader.clusters_complete();
    }

    /// The clusters read so far.
    pub fn clusters(&self) -> &[crate::inventory::Cluster] {
        self.loader.clusters()
    }

    pub fn gap(&mut self, scope: String, reason: String, tables: Vec<String>) {
        self.loader.gap(scope, reason, tables);
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

/// A role-assignment row in the flat shape the audit's query projects, borrowed from
/// the page: enough to tell whose it is without building it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlatRoleAssignment<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    principal_id: Cow<'a, str>,
    #[serde(borrow, default)]
    role_definition_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role_definition_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    scope: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_on: Option<Cow<'a, str>>,
    /// Present in other shapes: such rows take the full reader.
    #[serde(default)]
    principal_name: Option<IgnoredAny>,
    #[serde(default)]
    properties: Option<IgnoredAny>,
}

impl FlatRoleAssignment<'_> {
    /// The row, if it is a valid flat role assignment (see
    /// [`read::flat_role_assignment_is_valid`]).
    fn parse(raw: &RawValue) -> Option<FlatRoleAssignment<'_>> {
        if !raw.get().trim_start().starts_with('{') {
            return None; // serde would also read a struct from an array
        }
        let f: FlatRoleAssignment = serde_json::from_str(raw.get()).ok()?;
        let valid = f.principal_name.is_none()
            && f.properties.is_none()
            && read::flat_role_assignment_is_valid(
                &f.id,
                &f.principal_id,
                f.role_definition_id.as_deref(),
                f.role_definition_name.as_deref(),
                f.scope.as_deref(),
                f.created_on.as_deref(),
            );
        valid.then_some(f)
    }
}

/// Parses one Resource Graph reply and hands its rows to the sink. Rows are parsed
/// outside the lock; the lock is held once per page. Role assignments are the
/// exception: most belong to principals that are no cluster's identity, which only
/// the loader knows, so their page is sifted under the lock from borrowed rows and
/// only the rows kept are parsed in full.
pub fn ingest_page(
    sink: &Mutex<Sink>,
    kind: Kind,
    source: &'static str,
    body: &[u8],
) -> Result<PageMeta, String> {
    let page: Page = serde_json::from_slice(body)
        .map_err(|e| format!("reply is not a Resource Graph page: {e}"))?;
    let parse = |r: &RawValue| serde_json::from_str(r.get()).unwrap_or(Value::Null);
    if kind == Kind::RoleAssignments {
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        for raw in &page.data {
            let foreign = FlatRoleAssignment::parse(raw)
                .is_some_and(|f| sink.loader.drop_foreign_role_assignment(&f.principal_id));
            if foreign {
                sink.add_unread(kind, source, raw);
            } else {
                sink.add_rows(kind, source, &[raw], &[parse(raw)]);
            }
        }
    } else {
        let values: Vec<Value> = page.data.iter().map(|r| parse(r)).collect();
        sink.lock()
            .unwrap_or_else(|p| p.into_inner())
            .add_rows(kind, source, &page.data, &values);
    }
    Ok(page.meta())
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

    #[cfg(unix)]
    #[test]
    fn a_link_planted_at_a_partial_file_is_not_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        let dir = tmp.path().join("saved");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("clusters.json.partial")).unwrap();
        let sink = Mutex::new(Sink::new(Some(&dir)).unwrap());
        ingest_page(&sink, Kind::Clusters, "arg:clusters", PAGE.as_bytes()).unwrap();
        sink.into_inner().unwrap().finish().unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        let saved = dir.join("clusters.json");
        assert!(std::fs::symlink_metadata(&saved).unwrap().is_file());
        assert!(std::fs::read_to_string(&saved).unwrap().contains("\"c1\""));
        let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn flattened_role_assignments_and_resource_containers_are_accepted() {
        let sink = Mutex::new(Sink::new(None).unwrap());
        // Only cluster identities' assignments are kept: a cluster whose identity is p1.
        ingest_page(&sink, Kind::Clusters, "arg:clusters", CLUSTER_P1.as_bytes()).unwrap();
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

    const CLUSTER_P1: &str = r#"{"data":[{"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1","name":"c1","type":"microsoft.containerservice/managedclusters","identity":{"type":"SystemAssigned","principalId":"p1"},"properties":{}}]}"#;

    fn ra_row(n: u32, principal: &str, role: &str) -> String {
        format!(
            r#"{{"id":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01/providers/Microsoft.Authorization/roleAssignments/r{n}","principalId":"{principal}","principalType":"ServicePrincipal","roleDefinitionId":{role},"scope":"/subscriptions/6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01","createdOn":"2024-01-02T03:04:05Z"}}"#
        )
    }

    #[test]
    fn other_principals_role_assignments_are_dropped_unbuilt_but_saved_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Mutex::new(Sink::new(Some(dir.path())).unwrap());
        ingest_page(&sink, Kind::Clusters, "arg:clusters", CLUSTER_P1.as_bytes()).unwrap();
        sink.lock().unwrap().clusters_complete();
        let role = r#""/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7""#;
        let rows = [
            ra_row(1, "someone-else", role),   // dropped unbuilt
            ra_row(2, "P1", role),             // kept (ids ignore case)
            ra_row(3, "someone-else", "null"), // malformed: no role → skipped
            ra_row(4, "someone-else", role).replace("2024-01-02T03:04:05Z", "yesterday"),
            ra_row(5, "someone-else", "42"), // wrong type: full reader says why
            r#"["an","array"]"#.to_string(),
        ];
        let page = format!(r#"{{"data":[{}]}}"#, rows.join(","));
        let meta = ingest_page(&sink, Kind::RoleAssignments, "arg:ra", page.as_bytes()).unwrap();
        assert_eq!(meta.rows, 6);
        let inv = sink.into_inner().unwrap().finish().unwrap();
        let kept: Vec<&str> = inv
            .role_assignments
            .iter()
            .map(|r| &r.id[r.id.len() - 2..])
            .collect();
        assert_eq!(kept, ["r2"]);
        let skipped: Vec<(usize, &str)> = inv
            .coverage
            .skipped_rows
            .iter()
            .map(|s| (s.index, s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert_eq!(
            skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
            [2, 3, 4, 5],
            "indexes count every row, dropped ones too"
        );
        assert!(skipped[0].1.contains("roleDefinitionId"), "{skipped:?}");
        assert!(skipped[1].1.contains("createdOn"), "{skipped:?}");
        assert!(skipped[2].1.contains("roleDefinitionId") && skipped[2].1.contains("not a string"));
        // --save-inventory keeps every row, whoever's, and replays to the same audit input.
        let saved = std::fs::read_to_string(dir.path().join("role-assignments.json")).unwrap();
        assert!(
            saved.contains("/r1\"") && saved.contains("/r5\""),
            "{saved}"
        );
        let replay = crate::inventory::folder::read_folder(dir.path()).unwrap();
        assert_eq!(replay.role_assignments, inv.role_assignments);
        assert_eq!(replay.coverage.skipped_rows.len(), 4);
    }

    #[test]
    fn not_a_page_is_an_error() {
        let sink = Mutex::new(Sink::new(None).unwrap());
        let e = ingest_page(&sink, Kind::Clusters, "arg:clusters", b"{\"dat").unwrap_err();
        assert!(e.contains("not a Resource Graph page"), "{e}");
    }
}
