"""Test support shared by the unit tests, the integration tests and the benchmarks.

One home for what more than one of them imports (factories, workloads, child processes, brokers,
PostgreSQL, stripe-mock); helpers used by one test directory stay in it.
"""
