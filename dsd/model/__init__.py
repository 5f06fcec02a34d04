"""The architecture: one torch-free description of a network (`arch`), its exact complexity
in pycls's convention (`complexity`), the torch module built from it (`net`), and the checks
that tie the two together (`verify`)."""
