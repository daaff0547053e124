"""The engine process: entry and signals (main), the training loop (worker), what it
reports (report) and the socket it serves (server)."""
