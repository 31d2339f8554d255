"""The customer portal: server-rendered pages where a host's customers (tenants) manage their
webhook endpoints and see every delivery.

It sits on top of the two apps (`subscriptions`, `deliveries`): it imports them, neither imports
it. Mount it with one `include("webhooks_portal.urls")`; open it with a signed link from
`POST /api/tenants/{key}/portal-link/` (`webhooks_portal.api_urls`) or through the host's own
login and `WEBHOOKS["TENANT_RESOLVER"]`. docs/portal.md has the whole story.
"""
