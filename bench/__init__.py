"""Benchmarks: the data generator, a bare Litestar + asyncpg ceiling and the runner."""
