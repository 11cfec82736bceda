"""The HTTPS front doors: a forward proxy that intercepts CONNECTs to the Preview host (and
tunnels or refuses the rest), and TLS on the main listener.

Both hand their decrypted connections to the gateway's one ``aiohttp`` server, so every request
takes the same pipeline as on the plain listener.
"""
