"""The application core: the library (a facade over intake, listening, rendering, publishing
and upkeep) that owns every article's life, the job queue, the synthesis pipeline, articles
and their ids, the voice catalog, podcast episode making and the hot-audio cache.

It knows nothing of HTTP or argv. It may import `store`, `engines`, `audio`, `text`,
`runtime`, `config` and `errors`; it is imported by `service.services`, `http` and `cli`.
"""
