"""The fast path: brokers between instances, the hub inside one, and the SSE stream."""
