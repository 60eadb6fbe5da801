"""Chat platforms: one package each (schemas, adapter, API client, setup), one row each in ``registry``."""
