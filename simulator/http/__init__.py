"""The HTTP layer, surface-agnostic: Surface, the dispatcher, Upstash-* headers to commands, faults, the aiohttp
adapter.
"""
