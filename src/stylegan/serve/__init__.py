"""`stylegan serve`: a local web explorer for any network the toolkit loads (needs the `serve` extra:
starlette and uvicorn). `create_app(Explorer(device))` is the ASGI app; see docs/serve.md."""
