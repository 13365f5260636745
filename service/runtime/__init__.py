"""Process plumbing: worker processes that die with the server (lifeline), pools that outlive
their workers (respawn), the bounded parsing pool, and Prometheus metrics.

It knows nothing of articles or audio: it may import only `config` and `errors` (and work
it runs is handed to it by name or as a function by the layers above).
"""
