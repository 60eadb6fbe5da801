"""Live Helper Chat: its hooks in (one Rest API template for every event), its REST API out, all four automations."""
