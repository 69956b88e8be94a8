"""LVS on the wire: a scapy layer for building and dissecting frames, and pcap files.

`scapy_layer` turns the frame header into a declarative scapy layer (valid and
deliberately malformed frames for the bad-input suite); `pcap` writes the
harness's byte streams as TCP captures Wireshark can follow, and reads
captures back into frames with the reference decoder.
"""
