"""Listening ports the appliance picks for its host processes."""

import socket

from appliance import procs


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    """Below the range the kernel gives outgoing connections, so no client takes one before its server binds it."""
    ports = procs.free_ports(20, avoid={procs.LISTEN_LOW})
    assert len(set(ports)) == 20 and all(procs.LISTEN_LOW <= p < procs._ephemeral_low() for p in ports)
    for p in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_without_room_below_the_range_the_kernel_picks(monkeypatch):
    monkeypatch.setattr(procs, "_ephemeral_low", lambda: procs.LISTEN_LOW + 10)
    assert len(set(procs.free_ports(3))) == 3
