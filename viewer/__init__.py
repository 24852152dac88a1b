"""Browser viewer: stdlib HTTP server and a static three.js page; exports."""
