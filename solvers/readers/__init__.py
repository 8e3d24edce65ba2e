"""Readers for benchmark formats: Cordeau DARP, Li & Lim PDPTW, and their bks.csv."""

from solvers.readers.bks import Bks, load_bks
from solvers.readers.cordeau import read_cordeau
from solvers.readers.instance import DEFAULT_SCALE, BenchmarkInstance
from solvers.readers.lilim import read_lilim

__all__ = ["DEFAULT_SCALE", "BenchmarkInstance", "Bks", "load_bks", "read_cordeau", "read_lilim"]
