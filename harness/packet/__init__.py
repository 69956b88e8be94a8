"""Packet-level impairment: real IP packets of the LVS connections, lost, delayed and queued.

The `packet` hop of a scenario's path routes one TCP segment of every relayed
connection through a TUN device that this process owns. Each IP packet read
from the device is judged by a `Lane` (one per direction: loss, delay, rate,
link trace, blackhole...) and written back, so TCP itself sees the loss and
retransmits. See docs/packet-impairment.md.

One module, one job:
    ipv4        header arithmetic: directions, address rewrite, checksums
    tun         the TUN device and its addresses
    impairment  the parameters (the same names in scenarios, API and both backends)
    loss        random and Gilbert-Elliott loss
    link        rate limit and Mahimahi link-trace replay, with a queue limit
    mahimahi    the link-trace file format
    lane        one direction's pipeline: what happens to one packet
    impairer    the thread that moves packets between the TUN device and the lanes
    capture     the impairer's own pcap (raw IPv4)
    netem       the tc netem backend
    hop         the scenario hop: TUN, impairer and the two relays around it
    backends    what this machine offers, and why not
    namespace   network namespaces and veth pairs (benchmark baseline, probes)
"""
