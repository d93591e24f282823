"""Realistic event streams shared by integration tests and the benchmarks."""
