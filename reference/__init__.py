"""Reference implementation of the LVS protocol: the sans-IO core, codecs and peers."""
