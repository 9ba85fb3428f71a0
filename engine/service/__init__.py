"""The engine as a service: job execution, the SQLite job store and worker, the HTTP server."""
