"""LiveChat v3.5/v3.6: webhooks in (schemas, adapter), the Agent Chat and Configuration APIs out, setup."""
