"""Ports drawn for servers that are not listening yet never overlap one another."""

from tests.infra import free_ports


def test_ranges_drawn_together_never_overlap(monkeypatch):
    # A narrow range makes overlapping draws likely: each must be drawn again.
    monkeypatch.setattr("tests.infra._listen_port_range", lambda: (20000, 20030))
    for _ in range(50):
        spans = (2, 1, 7, 1)
        bases = free_ports(*spans)
        pairs = zip(bases, spans, strict=True)
        ports = [port for base, span in pairs for port in range(base, base + span)]
        assert len(ports) == len(set(ports)) == sum(spans)
