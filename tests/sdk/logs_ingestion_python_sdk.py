"""Microsoft's own Python Logs Ingestion client (azure-monitor-ingestion, with
azure-identity) against the emulator's Logs Ingestion API: proves the endpoint speaks
Azure Monitor's protocol (the client gzips and chunks on its own), not only our client's.

usage: logs_ingestion_python_sdk.py EMULATOR_URL CA_PEM_FILE DCR_IMMUTABLE_ID STREAM
Uploads three rows shaped like aks-identity-audit's, then tries once with a token for
another audience (refused), and reads back what the emulator stored.
prints one JSON line: {"listed": n, "wrong_audience_status": 401}
"""
import json
import os
import sys

url, ca, dcr, stream = sys.argv[1:5]
os.environ["REQUESTS_CA_BUNDLE"] = ca  # azure-identity (MSAL, requests) trusts the emulator's CA

import requests  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from azure.monitor.ingestion import LogsIngestionClient  # noqa: E402

cred = ClientSecretCredential(
    tenant_id="00000000-0000-0000-0000-0000000000aa",
    client_id="sdk-check",
    client_secret="sdk-check-secret",
    authority=url,
    disable_instance_discovery=True,
)
rows = [
    {"TimeGenerated": "2026-12-04T06:00:00Z", "Kind": "cluster", "RunId": "sdk", "RowId": "sdk:c:0",
     "ClusterName": "aks-1", "MigrationStatus": "pending"},
    {"TimeGenerated": "2026-12-04T06:00:00Z", "Kind": "cluster", "RunId": "sdk", "RowId": "sdk:c:1",
     "ClusterName": "aks-2", "MigrationStatus": "complete"},
    {"TimeGenerated": "2026-12-04T06:00:00Z", "Kind": "finding", "RunId": "sdk", "RowId": "sdk:f:0",
     "ClusterName": "aks-1", "RuleId": "AKSMI001", "Severity": "high"},
]
client = LogsIngestionClient(endpoint=url, credential=cred, connection_verify=ca)
client.upload(rule_id=dcr, stream_name=stream, logs=rows)

wrong = LogsIngestionClient(
    endpoint=url,
    credential=cred,
    connection_verify=ca,
    credential_scopes=["https://graph.microsoft.com/.default"],
)
status = None
try:
    wrong.upload(rule_id=dcr, stream_name=stream, logs=rows[:1])
except Exception as e:  # the client raises HttpResponseError for a refused chunk
    status = getattr(e, "status_code", None) or getattr(getattr(e, "error", None), "status_code", None)
    if status is None:
        status = repr(e)

listed = requests.get(f"{url}/_emulator/logs", verify=ca).json()["value"]
print(json.dumps({"listed": len(listed), "wrong_audience_status": status}))
