"""HTTP routes, one module per area. Handlers parse, call one function, and render."""
