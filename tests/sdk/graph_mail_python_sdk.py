"""Microsoft's own Python Graph SDK (msgraph-sdk, with azure-identity) against the
emulator's sendMail: proves the endpoint speaks Microsoft Graph, not only our client's
dialect.

usage: graph_mail_python_sdk.py EMULATOR_URL CA_PEM_FILE
Sends one message with a file attachment as aks-audit@contoso.com, then one without a
recipient (Graph refuses it), and reads back what the emulator delivered.
prints one JSON line: {"error_code": "...", "listed": n}
"""
import asyncio
import json
import os
import sys
from urllib.parse import urlparse

url, ca = sys.argv[1], sys.argv[2]
os.environ["REQUESTS_CA_BUNDLE"] = ca  # azure-identity (MSAL, requests) trusts the emulator's CA

import httpx  # noqa: E402
from azure.identity import ClientSecretCredential  # noqa: E402
from kiota_authentication_azure.azure_identity_authentication_provider import (  # noqa: E402
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.models.body_type import BodyType  # noqa: E402
from msgraph.generated.models.email_address import EmailAddress  # noqa: E402
from msgraph.generated.models.file_attachment import FileAttachment  # noqa: E402
from msgraph.generated.models.item_body import ItemBody  # noqa: E402
from msgraph.generated.models.message import Message  # noqa: E402
from msgraph.generated.models.o_data_errors.o_data_error import ODataError  # noqa: E402
from msgraph.generated.models.recipient import Recipient  # noqa: E402
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (  # noqa: E402
    SendMailPostRequestBody,
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

    def message(to):
        return Message(
            subject="Sent by msgraph-sdk",
            body=ItemBody(content_type=BodyType.Html, content="<p>one owner's findings</p>"),
            to_recipients=[Recipient(email_address=EmailAddress(address=a)) for a in to],
            attachments=[
                FileAttachment(
                    name="findings.csv",
                    content_type="text/csv",
                    content_bytes=b"cluster,rule\naks-1,AKSMI001\n",
                )
            ],
        )

    sender = client.users.by_user_id("aks-audit@contoso.com")
    await sender.send_mail.post(SendMailPostRequestBody(message=message(["owner@contoso.com"]), save_to_sent_items=False))

    error_code = None
    try:
        await sender.send_mail.post(SendMailPostRequestBody(message=message([])))
    except ODataError as e:
        error_code = e.error.code if e.error else str(e.response_status_code)

    async with httpx.AsyncClient(verify=ca) as h:
        listed = (await h.get(f"{url}/_emulator/mail")).json()["value"]
    print(json.dumps({"error_code": error_code, "listed": len(listed)}))


asyncio.run(main())
