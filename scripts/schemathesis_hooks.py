"""Schemathesis hooks for scripts/schemathesis.sh: the event feed's body (`POST /v1/events`,
JSON Lines as `application/x-ndjson`) is sent as the text it is, like `text/plain`."""

import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
