"""The HTTP face of langdu: the FastAPI app and its lifespan, the uvicorn server, the routes
and their request/response schemas, the one policy for answering stored audio (Range, ETag,
304, 416), the hot audio path ahead of the framework, admission (rate limits, write keys),
input hygiene, problem+json errors, the OpenAPI document and the podcast feed's XML.

It translates HTTP into calls on the library and back, and decides nothing about an article.
It may import every layer below it: `service.services` (the composition root), `core`,
`store`, `audio`, `text`, `runtime`, `config` and `errors`; only `service.cli` imports it.
"""
