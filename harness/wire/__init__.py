"""LVS on the wire: a scapy layer for building and dissecting frames, and pcap files.

`scapy_layer` turns the frame header into a declarative scapy layer (valid and
deliberately malformed frames for the bad-input suite); `pcap` writes the
harness's byte streams as pcapng TCP captures (one interface per tap,
wall-clock times) and reads pcap or pcapng captures back into frames with the
reference decoder; `capture_format` holds the file formats and link layers;
`lvs.lua` is the Wireshark dissector (docs/wireshark.md).
"""
