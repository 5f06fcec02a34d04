"""Data sets and recipes: the registry of known data sets and their shapes (`registry`, no
torch), the real loaders (`loaders`), and the training recipe per data set with overrides
(`recipe`)."""
