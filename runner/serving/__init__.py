"""Serving: the candidate in a real serving engine (vLLM's OpenAI-compatible server with the
adapter as a LoRA module), measured the way a backend sees it (time to first token, latency,
tokens/s, the server's peak memory, on named hardware), its answers compared with the PEFT
outputs the eval scored (parity), and the lint of settings the engines reject or convert
wrongly, before any GPU minute."""
