"""Microsoft's own Python SDK (azure-identity + azure-mgmt-resourcegraph) against the
emulator: proves the emulator speaks Azure's protocol, not only our client's dialect.

usage: arg_python_sdk.py EMULATOR_URL CA_PEM_FILE
prints one JSON line: {"subscriptions": n, "clusters": n, "pages": n, "error_code": "..."}
"""
import json
import os
import sys

url, ca = sys.argv[1], sys.argv[2]
os.environ["REQUESTS_CA_BUNDLE"] = ca  # trust the emulator's CA in requests (azure-core and MSAL)

from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.mgmt.resourcegraph import ResourceGraphClient  # noqa: E402
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions  # noqa: E402

cred = ClientSecretCredential(
    tenant_id="00000000-0000-0000-0000-0000000000aa",
    client_id="sdk-check",
    client_secret="sdk-check-secret",
    authority=url,
    disable_instance_discovery=True,
)
client = ResourceGraphClient(cred, base_url=url, credential_scopes=["https://management.azure.com/.default"])

subs = client.resources(QueryRequest(query="resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project id, name", options=QueryRequestOptions(result_format="objectArray")))

# Page through the clusters two at a time with the SDK's own $skipToken handling.
pages, rows, token = 0, [], None
while True:
    opts = QueryRequestOptions(top=2, skip_token=token, result_format="objectArray")
    res = client.resources(QueryRequest(query="resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, name | order by id asc", options=opts))
    pages += 1
    rows.extend(res.data)
    assert res.count == len(res.data), (res.count, len(res.data))
    assert res.result_truncated in ("false", "true") or str(res.result_truncated).lower() in ("false", "true")
    token = res.skip_token
    if not token:
        break
    if pages > 100:
        raise SystemExit("paging never ended")

error_code = None
try:
    client.resources(QueryRequest(query="resources | distinct type"))
except HttpResponseError as e:
    error_code = e.error.code if e.error else str(e.status_code)

# A summary, as the audit's pass for grants through groups asks one: a row per key
# with the rows packed in (no id column, so not pageable).
summary = client.resources(QueryRequest(
    query="resources | where type =~ 'microsoft.containerservice/managedclusters' "
          "| summarize n = count(), names = make_list(pack('name', name)) by subscriptionId "
          "| order by subscriptionId asc",
    options=QueryRequestOptions(top=1000, result_format="objectArray")))
per_sub = {r["subscriptionId"]: (r["n"], len(r["names"])) for r in summary.data}

print(json.dumps({"subscriptions": subs.total_records, "clusters": len(rows), "distinct": len({r["id"] for r in rows}), "pages": pages, "error_code": error_code,
                  "summary_rows": summary.count, "summary_truncated": str(summary.result_truncated).lower(),
                  "summary_clusters": sum(n for n, _ in per_sub.values()),
                  "summary_packed": sum(k for _, k in per_sub.values())}))
