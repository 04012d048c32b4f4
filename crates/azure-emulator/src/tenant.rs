//! The emulated tenant: rows per Resource Graph table, kept compact (one serialized
//! JSON string per row plus its interned subscription), sorted by `id`.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::kql::Table;

/// Marks a row that belongs to no subscription (management-group scope, malformed).
pub const NO_SUBSCRIPTION: u32 = u32::MAX;

/// One row: its JSON text and the index of its subscription in [`Tenant::subscription_ids`].
#[derive(Debug, Clone)]
pub struct Row {
    pub json: Box<str>,
    pub sub: u32,
}

/// A subscription as ARM `GET /subscriptions` lists it.
#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    pub subscription_id: String,
    pub display_name: String,
    pub tenant_id: String,
    pub state: String,
    pub tags: Value,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TenantData {
    tables: [Vec<Row>; 5],
    /// Lower-case subscription GUIDs, indexed by `Row::sub`.
    subscription_ids: Vec<String>,
    sub_index: HashMap<String, u32>,
    subscriptions: Vec<SubscriptionInfo>,
    /// Lower-case cluster id → row index in `resources`.
    clusters: HashMap<String, usize>,
    applications: Vec<Value>,
    latest_node_images: BTreeMap<String, String>,
    /// Lower-case principal id → the groups it belongs to, transitively (Graph
    /// `transitiveMemberOf`), from `graph-group-memberships.json`.
    group_memberships: HashMap<String, Vec<String>>,
}

/// The rows the emulator serves. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Tenant {
    data: Arc<TenantData>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field(
                "resourcecontainers",
                &self.rows(Table::ResourceContainers).len(),
            )
            .field("resources", &self.rows(Table::Resources).len())
            .field(
                "authorizationresources",
                &self.rows(Table::AuthorizationResources).len(),
            )
            .field(
                "computeresources",
                &self.rows(Table::ComputeResources).len(),
            )
            .field("resourcechanges", &self.rows(Table::ResourceChanges).len())
            .field("applications", &self.data.applications.len())
            .finish()
    }
}

/// Fields `az ... -o json` keeps at the top level; everything else moves into `properties`.
const TOP_LEVEL: [&str; 13] = [
    "id",
    "name",
    "type",
    "location",
    "tags",
    "identity",
    "sku",
    "systemData",
    "resourceGroup",
    "subscriptionId",
    "tenantId",
    "kind",
    "zones",
];

/// Inventory files in load order, the table each feeds, and whether it is required.
const INVENTORY_FILES: [(&str, Option<Table>, bool); 12] = [
    ("subscriptions.json", Some(Table::ResourceContainers), false),
    (
        "resource-groups.json",
        Some(Table::ResourceContainers),
        false,
    ),
    ("clusters.json", Some(Table::Resources), true),
    ("registries.json", Some(Table::Resources), false),
    ("identities.json", Some(Table::Resources), false),
    (
        "role-assignments.json",
        Some(Table::AuthorizationResources),
        false,
    ),
    // Node resource groups' scale sets (`resources`), their instances
    // (`computeresources`) and managed clusters' change history (`resourcechanges`),
    // in Azure's shapes: what the audit's migration follow-ups read.
    ("scale-sets.json", Some(Table::Resources), false),
    ("scale-set-vms.json", Some(Table::ComputeResources), false),
    ("resource-changes.json", Some(Table::ResourceChanges), false),
    ("graph-applications.json", None, false),
    ("latest-node-images.json", None, false),
    // Microsoft Graph's group membership (`transitiveMemberOf`), in the shape of the
    // audit's `group-memberships.json`: `[{"principalId": "...", "groups": [...]}]`.
    // Named apart so an offline audit of the same folder does not read it (as Graph's
    // `graph-applications.json`).
    ("graph-group-memberships.json", None, false),
];

impl Tenant {
    /// Reads an inventory folder (see the module docs of the inventory format).
    pub fn from_inventory_dir(dir: &Path) -> anyhow::Result<Tenant> {
        let mut files = Vec::new();
        for (name, _, required) in INVENTORY_FILES {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => files.push((name, text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
                Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
            }
        }
        Tenant::from_files(files.iter().map(|(n, t)| (*n, t.as_str())))
    }

    /// The built-in demo tenant, as of now ([`Tenant::demo_at`]).
    pub fn demo() -> Tenant {
        Tenant::demo_at(chrono::Utc::now())
    }

    /// The built-in demo tenant as of `now` (the audit passes its run's clock, so a
    /// `--now` run sees the same tenant whenever it runs).
    ///
    /// Microsoft Graph gets one application per service-principal cluster, with
    /// secret expiries relative to `now`: the first already expired, the second due in
    /// 20 days, the rest in about a year; the change history is dated before `now`.
    pub fn demo_at(now: chrono::DateTime<chrono::Utc>) -> Tenant {
        let changes = crate::demo::resource_changes(now);
        let files = crate::demo::FILES
            .iter()
            .copied()
            .chain([("resource-changes.json", changes.as_str())]);
        let mut t = Tenant::from_files(files)
            .unwrap_or_else(|e| panic!("embedded demo tenant is invalid: {e:#}"));
        let mut apps = Vec::new();
        for row in t.rows(Table::Resources) {
            let Ok(v) = serde_json::from_str::<Value>(&row.json) else {
                continue;
            };
            let client = v
                .pointer("/properties/servicePrincipalProfile/clientId")
                .and_then(Value::as_str)
                .unwrap_or("msi");
            if client.eq_ignore_ascii_case("msi") || v.get("identity").is_some_and(Value::is_object)
            {
                continue;
            }
            let days = match apps.len() {
                0 => -10,
                1 => 20,
                n => 300 + 30 * n as i64,
            };
            let end = (now + chrono::Duration::days(days))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let legacy = client.starts_with("http");
            let name = v.get("name").and_then(Value::as_str).unwrap_or("cluster");
            apps.push(json!({
                "id": det_guid(&format!("app:{client}")),
                "appId": if legacy {
                    det_guid(client)
                } else {
                    client.to_string()
                },
                "displayName": format!("{name}-sp"),
                "identifierUris": if legacy { json!([client]) } else { json!([]) },
                "passwordCredentials": [{"keyId": det_guid(&format!("key:{client}")),
                                         "displayName": "rbac", "endDateTime": end}],
                "keyCredentials": [],
            }));
        }
        // The service principal the payments clusters left (see `demo::seed_history`):
        // their kubelet may still use it.
        let old = crate::demo::PAYMENTS_OLD_SP;
        apps.push(json!({
            "id": det_guid(&format!("app:{old}")),
            "appId": old,
            "displayName": "aks-payments-sp",
            "identifierUris": [],
            "passwordCredentials": [{"keyId": det_guid(&format!("key:{old}")), "displayName": "rbac",
                                     "endDateTime": (now + chrono::Duration::days(25)).format("%Y-%m-%dT%H:%M:%SZ").to_string()}],
            "keyCredentials": [],
        }));
        Arc::make_mut(&mut t.data).applications = apps;
        t
    }

    /// Builds a tenant from `(file name, contents)` pairs in the inventory format.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<Tenant> {
        let files: HashMap<&str, &str> = files.into_iter().collect();
        let mut d = TenantData::default();
        let mut sub_tenants: HashMap<String, String> = HashMap::new();
        for (name, table, _) in INVENTORY_FILES {
            let Some(text) = files.get(name) else {
                continue;
            };
            let ctx =
                || format!("{name}: not a JSON array, {{\"value\": [...]}} or {{\"data\": [...]}}");
            match name {
                "graph-applications.json" => {
                    let elems = elements(text).map_err(|e| anyhow::anyhow!("{}: {e}", ctx()))?;
                    for raw in elems {
                        d.applications.push(serde_json::from_str(raw.get())?);
                    }
                    continue;
                }
                "graph-group-memberships.json" => {
                    let elems = elements(text).map_err(|e| anyhow::anyhow!("{}: {e}", ctx()))?;
                    for raw in elems {
                        let v: Value = serde_json::from_str(raw.get())?;
                        let p = v
                            .get("principalId")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                anyhow::anyhow!("{name}: an element without `principalId`")
                            })?;
                        let groups: Vec<String> = v
                            .get("groups")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default();
                        d.group_memberships
                            .entry(p.to_ascii_lowercase())
                            .or_default()
                            .extend(groups);
                    }
                    continue;
                }
                "latest-node-images.json" => {
                    d.latest_node_images = serde_json::from_str(text).map_err(|e| {
                        anyhow::anyhow!("{name}: expected an object of image family → version: {e}")
                    })?;
                    continue;
                }
                _ => {}
            }
            let Some(table) = table else { continue };
            let elems = elements(text).map_err(|e| anyhow::anyhow!("{}: {e}", ctx()))?;
            for raw in elems {
                let v: Value = serde_json::from_str(raw.get())?;
                let v = if name == "subscriptions.json" {
                    normalize_subscription(v)
                } else {
                    normalize_resource(v, &sub_tenants)
                };
                if name == "subscriptions.json" {
                    if let Some(info) = subscription_info(&v) {
                        sub_tenants.insert(info.subscription_id.clone(), info.tenant_id.clone());
                        d.subscriptions.push(info);
                    }
                }
                d.push_row(table, &v);
            }
        }
        d.finish();
        Ok(Tenant { data: Arc::new(d) })
    }

    pub fn rows(&self, table: Table) -> &[Row] {
        &self.data.tables[table.index()]
    }

    /// Lower-case subscription GUIDs, indexed by [`Row::sub`].
    pub fn subscription_ids(&self) -> &[String] {
        &self.data.subscription_ids
    }

    /// Index of a subscription GUID (any case), if any row belongs to it.
    pub fn subscription_index(&self, id: &str) -> Option<u32> {
        self.data.sub_index.get(&id.to_ascii_lowercase()).copied()
    }

    /// Subscriptions as ARM lists them, sorted by id.
    pub fn subscriptions(&self) -> &[SubscriptionInfo] {
        &self.data.subscriptions
    }

    /// The cluster row with this id (any case).
    pub fn cluster(&self, id: &str) -> Option<&Row> {
        let i = *self.data.clusters.get(&id.to_ascii_lowercase())?;
        self.rows(Table::Resources).get(i)
    }

    /// Microsoft Graph application objects.
    pub fn applications(&self) -> &[Value] {
        &self.data.applications
    }

    /// The groups `principal` belongs to (any case), transitively; empty when none.
    pub fn groups_of(&self, principal: &str) -> &[String] {
        self.data
            .group_memberships
            .get(&principal.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Newest node image for a pool currently on `current` (`<family>-<version>`).
    pub fn latest_node_image(&self, current: &str) -> String {
        let family = current.rsplit_once('-').map(|(f, _)| f).unwrap_or(current);
        match self.data.latest_node_images.get(family) {
            Some(latest) if latest.as_str() > current => latest.clone(),
            _ => current.to_string(),
        }
    }

    /// A copy in which `n` cluster rows (chosen by `seed`) carry wrongly typed fields.
    pub fn with_malformed_clusters(mut self, n: u32, seed: u64) -> Tenant {
        if n == 0 {
            return self;
        }
        let data = Arc::make_mut(&mut self.data);
        let mut idx: Vec<usize> = data.clusters.values().copied().collect();
        idx.sort_unstable();
        let len = idx.len().max(1);
        let start = (seed as usize) % len;
        for k in 0..(n as usize).min(idx.len()) {
            let i = idx[(start + k) % idx.len()];
            let row = &mut data.tables[Table::Resources.index()][i];
            if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&row.json) {
                match k % 3 {
                    0 => m.insert("properties".into(), Value::String("corrupted".into())),
                    1 => m.insert("identity".into(), json!(["not", "an", "object"])),
                    _ => m.insert("name".into(), json!(42)),
                };
                row.json = Value::Object(m).to_string().into_boxed_str();
            }
        }
        self
    }
}

impl TenantData {
    fn intern_sub(&mut self, sub: &str) -> u32 {
        let sub = sub.to_ascii_lowercase();
        if let Some(i) = self.sub_index.get(&sub) {
            return *i;
        }
        let i = self.subscription_ids.len() as u32;
        self.subscription_ids.push(sub.clone());
        self.sub_index.insert(sub, i);
        i
    }

    fn push_row(&mut self, table: Table, v: &Value) {
        let sub = match v.get("subscriptionId").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => self.intern_sub(s),
            _ => NO_SUBSCRIPTION,
        };
        self.tables[table.index()].push(Row {
            json: v.to_string().into_boxed_str(),
            sub,
        });
    }

    fn finish(&mut self) {
        for rows in &mut self.tables {
            let mut keyed: Vec<(String, Row)> =
                rows.drain(..).map(|r| (row_id(&r.json), r)).collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            rows.extend(keyed.into_iter().map(|(_, r)| r));
        }
        for (i, row) in self.tables[Table::Resources.index()].iter().enumerate() {
            let v: Value = serde_json::from_str(&row.json).unwrap_or(Value::Null);
            let is_cluster = v.get("type").and_then(Value::as_str).is_some_and(|t| {
                t.eq_ignore_ascii_case("microsoft.containerservice/managedclusters")
            });
            if let (true, Some(id)) = (is_cluster, v.get("id").and_then(Value::as_str)) {
                self.clusters.insert(id.to_ascii_lowercase(), i);
            }
        }
        self.subscriptions
            .sort_by(|a, b| a.subscription_id.cmp(&b.subscription_id));
        self.subscriptions
            .dedup_by(|a, b| a.subscription_id == b.subscription_id);
    }
}

/// A stable GUID-shaped string derived from `s` (FNV-1a).
pub(crate) fn det_guid(s: &str) -> String {
    let fnv = |seed: u64| {
        s.bytes()
            .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
    };
    let (a, b) = (fnv(0xcbf29ce484222325), fnv(0x84222325cbf29ce4));
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn row_id(json: &str) -> String {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    match serde_json::from_str::<IdOnly>(json) {
        Ok(IdOnly {
            id: Some(Value::String(s)),
        }) => s,
        _ => String::new(),
    }
}

/// The elements of an inventory file: a JSON array, `{"value": [...]}` or `{"data": [...]}`.
fn elements(text: &str) -> anyhow::Result<Vec<&RawValue>> {
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow, default)]
        value: Option<Vec<&'a RawValue>>,
        #[serde(borrow, default)]
        data: Option<Vec<&'a RawValue>>,
    }
    if text.trim_start().starts_with('{') {
        let w: Wrapped = serde_json::from_str(text)?;
        w.value
            .or(w.data)
            .ok_or_else(|| anyhow::anyhow!("object without a \"value\" or \"data\" array"))
    } else {
        Ok(serde_json::from_str(text)?)
    }
}

/// `/subscriptions/{s}/resourceGroups/{rg}/...` → (s, rg), either possibly absent.
pub fn parse_id(id: &str) -> (Option<&str>, Option<&str>) {
    let parts: Vec<&str> = id.split('/').collect();
    let mut sub = None;
    let mut rg = None;
    let mut i = 0;
    while i + 1 < parts.len() {
        if parts[i].eq_ignore_ascii_case("subscriptions") && sub.is_none() {
            sub = Some(parts[i + 1]);
        } else if parts[i].eq_ignore_ascii_case("resourcegroups") && rg.is_none() && sub.is_some() {
            rg = Some(parts[i + 1]);
        }
        i += 1;
    }
    (sub.filter(|s| !s.is_empty()), rg.filter(|s| !s.is_empty()))
}

/// ARM, ARG or `az` shape → ARG row. Non-objects are returned unchanged.
pub fn normalize_resource(v: Value, sub_tenants: &HashMap<String, String>) -> Value {
    let Value::Object(mut m) = v else { return v };
    if !m.contains_key("properties") {
        let mut props = Map::new();
        let keys: Vec<String> = m
            .keys()
            .filter(|k| !TOP_LEVEL.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in keys {
            if let Some(val) = m.remove(&k) {
                props.insert(k, val);
            }
        }
        m.insert("properties".into(), Value::Object(props));
    }
    if let Some(Value::String(t)) = m.get_mut("type") {
        *t = t.to_ascii_lowercase();
    }
    let id = m.get("id").and_then(Value::as_str).map(str::to_string);
    if let Some(id) = id {
        let (sub, rg) = parse_id(&id);
        if !m.contains_key("subscriptionId") {
            m.insert("subscriptionId".into(), json!(sub.unwrap_or("")));
        }
        if !m.contains_key("resourceGroup") {
            m.insert(
                "resourceGroup".into(),
                json!(rg.unwrap_or("").to_ascii_lowercase()),
            );
        }
    }
    if !m.contains_key("tenantId") {
        let tenant = m
            .get("subscriptionId")
            .and_then(Value::as_str)
            .and_then(|s| sub_tenants.get(&s.to_ascii_lowercase()));
        if let Some(t) = tenant {
            m.insert("tenantId".into(), json!(t));
        }
    }
    Value::Object(m)
}

/// `az account list`, ARM `/subscriptions` or ARG shape → ARG `resourcecontainers` row.
pub fn normalize_subscription(v: Value) -> Value {
    let Value::Object(m) = v else { return v };
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let guid = s("subscriptionId").or_else(|| {
        s("id").map(|id| {
            parse_id(&id)
                .0
                .map(str::to_string)
                .unwrap_or_else(|| id.trim_matches('/').to_string())
        })
    });
    let Some(guid) = guid else {
        return Value::Object(m);
    };
    let name = s("displayName")
        .or_else(|| s("name"))
        .unwrap_or_else(|| guid.clone());
    // A Resource Graph subscription row carries the home tenant; `az account list`
    // prints the signed-in (for Azure Lighthouse, the managing) tenant as `tenantId`.
    let tenant = s("homeTenantId")
        .or_else(|| s("tenantId"))
        .unwrap_or_default();
    let mut props = match m.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => Map::new(),
    };
    if let Some(state) = s("state") {
        props.insert("state".into(), json!(state));
    }
    for k in [
        "subscriptionPolicies",
        "authorizationSource",
        "managedByTenants",
    ] {
        if let Some(v) = m.get(k) {
            props.insert(k.into(), v.clone());
        }
    }
    props.entry("state").or_insert_with(|| json!("Enabled"));
    json!({
        "id": format!("/subscriptions/{guid}"),
        "name": name,
        "type": "microsoft.resources/subscriptions",
        "tenantId": tenant,
        "subscriptionId": guid,
        "resourceGroup": "",
        "location": "",
        "tags": m.get("tags").cloned().unwrap_or_else(|| json!({})),
        "properties": Value::Object(props),
    })
}

fn subscription_info(row: &Value) -> Option<SubscriptionInfo> {
    let s = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_string);
    Some(SubscriptionInfo {
        subscription_id: s("subscriptionId")?.to_ascii_lowercase(),
        display_name: s("name").unwrap_or_default(),
        tenant_id: s("tenantId").unwrap_or_default(),
        state: row
            .pointer("/properties/state")
            .and_then(Value::as_str)
            .unwrap_or("Enabled")
            .to_string(),
        tags: row.get("tags").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests;
