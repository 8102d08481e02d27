"""Signal handlers of the identity app (connected from apps.py). Each area adds its own here."""

from identity.activity import note_token_network  # noqa: E402
from tenants.hooks import on_token_used, token_used  # noqa: E402

# unusual activity: every accepted API token is checked for a network it never used (one cache lookup).
if note_token_network not in token_used:
    on_token_used(note_token_network)
