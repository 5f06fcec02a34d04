"""The run directory on disk: its one owner `Run` (every path, the manifest read once), the
append-only result shards (`results`) and the state of a run read from its files (`status`)."""
