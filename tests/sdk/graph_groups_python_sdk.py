"""Microsoft's own Python Graph SDK (msgraph-sdk, with azure-identity) against the
emulator's transitiveMemberOf: the request the SDK builds for the group cast (its
`graph.group` form, `$select`, `$count`, `$top`, the `ConsistencyLevel` header) is
answered, and the SDK follows `@odata.nextLink` through the pages.

usage: graph_groups_python_sdk.py EMULATOR_URL CA_PEM_FILE SERVICE_PRINCIPAL_ID
prints one JSON line: {"groups": [...], "pages": n, "count": n, "error_code": "..."}
"""
import asyncio
import json
import os
import sys
from urllib.parse import urlparse

url, ca, sp = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["REQUESTS_CA_BUNDLE"] = ca  # azure-identity (MSAL, requests) trusts the emulator's CA

import httpx  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_authentication_azure.azure_identity_authentication_provider import (  # noqa: E402
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.models.o_data_errors.o_data_error import ODataError  # noqa: E402
from msgraph.generated.service_principals.item.transitive_member_of.graph_group.graph_group_request_builder import (  # noqa: E402
    GraphGroupRequestBuilder,
)
from msgraph_core import GraphClientFactory  # noqa: E402


async def main():
    cred = ClientSecretCredential(
        tenant_id="00000000-0000-0000-0000-0000000000aa",
        client_id="sdk-check",
        client_secret="sdk-check-secret",
        authority=url,
        disable_instance_discovery=True,
    )
    auth = AzureIdentityAuthenticationProvider(
        cred,
        scopes=["https://graph.microsoft.com/.default"],
        allowed_hosts=[urlparse(url).hostname],
    )
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ca))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = f"{url}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)

    groups = client.service_principals.by_service_principal_id(sp).transitive_member_of.graph_group
    config = RequestConfiguration(
        query_parameters=GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
            select=["id"], count=True, top=1
        )
    )
    config.headers.add("ConsistencyLevel", "eventual")
    page = await groups.get(request_configuration=config)
    ids, pages, count = [], 0, page.odata_count
    while page is not None:
        pages += 1
        ids.extend(g.id for g in page.value or [])
        if not page.odata_next_link:
            break
        page = await groups.with_url(page.odata_next_link).get(
            request_configuration=RequestConfiguration(headers=config.headers)
        )

    # Without ConsistencyLevel the cast is refused, as Graph refuses it.
    error_code = None
    try:
        await groups.get(
            request_configuration=RequestConfiguration(
                query_parameters=GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
                    select=["id"], count=True
                )
            )
        )
    except ODataError as e:
        error_code = e.error.code if e.error else str(e.response_status_code)
    print(json.dumps({"groups": ids, "pages": pages, "count": count, "error_code": error_code}))


asyncio.run(main())
