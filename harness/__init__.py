"""The conformance and chaos harness for the LVS protocol."""
