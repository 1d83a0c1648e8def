"""Network front ends. They only translate: behaviour and errors come from the engine."""
