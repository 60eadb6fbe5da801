"""Legacy LiveChat v2 webhooks: in through their own schemas and adapter, acted on with the v3 Agent API."""
