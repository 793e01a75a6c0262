"""Scale benchmarks: bulk synthetic warehouses at 1x/10x/100x and timed pipeline stages."""
