"""One thin blueprint per source (named after it), over the shared request checks of ``app.ingress``.

Each module has ``bp`` and ``openapi(settings)``, its part of ``/openapi.json``.
"""

from app.webhooks import chatbot, lhc, livechat, livechat_v2

SOURCES = (livechat, livechat_v2, chatbot, lhc)
