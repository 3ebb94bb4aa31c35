"""Native Upstash QStash v2 (``/v2/...``): the API the official SDKs (``qstash`` on PyPI, ``@upstash/qstash``
on npm) call, over the same engine and accounts as the Sapiom surface."""
