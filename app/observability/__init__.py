"""Logs and metrics of one process: structured JSON logs (`logging`), Prometheus metrics
(`metrics`, scraped from the internal port) and the per-request line and timings (`requests`).
"""
