"""Django-free helpers shared by every app (as healthchecks keeps ``hc/lib/``): the expression language,
SVG charts, the outbound HTTP guard, fingerprints. Nothing here imports an app; at most Django settings."""
