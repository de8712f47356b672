"""The operator's runtime: a watch-fed store of jobs, queues and pods, and the dispatch loop over it."""
