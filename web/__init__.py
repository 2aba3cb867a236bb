"""aiohttp: the app factory, middlewares, one module per API, the WebSocket."""
