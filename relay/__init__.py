"""The call server: aiohttp + aiortc, delay line, accounts, web API."""
