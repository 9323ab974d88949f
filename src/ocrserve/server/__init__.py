"""The HTTP server: API surfaces (inference, ...), the engine and its worker processes."""
