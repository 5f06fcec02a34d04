"""Training: batches on the device (`pipeline`), one model's whole loop (`loop`), its steps
(`step`), models stepped in turn (`streams`), claims that let many workers share a run
(`claims`), what a failure means for a worker (`faults`), options checked into a
`BatchConfig` (`setup`), and `train-batch` itself (`batch`)."""
