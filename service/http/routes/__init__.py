"""The API's routes, one module per resource; thin: they translate HTTP into library calls.

They may import the rest of `service.http` (schemas, serving, hygiene, dependencies) and the
layers below it, never each other's private helpers.
"""
