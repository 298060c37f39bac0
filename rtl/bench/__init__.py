"""The cocotb benches of the RTL blocks (simulator side) and their host-side runner."""
