"""HTTP: thin FastAPI routers over :class:`tidings.service.Tidings`."""
