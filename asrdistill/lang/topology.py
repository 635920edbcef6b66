"""HMM topologies in Kaldi's text format (what ``HmmTopology.read`` accepts).

Defaults are Kaldi's: 3-state left-to-right phones, 5-state silence whose middle states
are fully connected (``utils/gen_topo.pl``). Initial transition probabilities are only
a starting point; training re-estimates them.
"""

from __future__ import annotations

from typing import Sequence


def _phone_entry(num_states: int) -> str:
    lines = []
    for s in range(num_states):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    lines.append(f"<State> {num_states} </State>")
    return "\n".join(lines)


def _silence_entry(num_states: int) -> str:
    if num_states < 3:
        return _phone_entry(num_states)
    lines = []
    last = num_states - 1
    p = 1.0 / (num_states - 1)
    # state 0 goes to 0 .. last-1; middle states to 1 .. last; the last state loops or exits
    lines.append(
        "<State> 0 <PdfClass> 0 " + " ".join(f"<Transition> {d} {p:g}" for d in range(0, last)) + " </State>"
    )
    for s in range(1, last):
        lines.append(
            f"<State> {s} <PdfClass> {s} " + " ".join(f"<Transition> {d} {p:g}" for d in range(1, last + 1)) + " </State>"
        )
    lines.append(f"<State> {last} <PdfClass> {last} <Transition> {last} 0.75 <Transition> {num_states} 0.25 </State>")
    lines.append(f"<State> {num_states} </State>")
    return "\n".join(lines)


def make_topology(
    nonsilence_phones: Sequence[int],
    silence_phones: Sequence[int],
    num_nonsil_states: int = 3,
    num_sil_states: int = 5,
) -> str:
    """Kaldi topology text for the given phone ids."""
    if num_nonsil_states < 1 or num_sil_states < 1:
        raise ValueError("HMMs need at least one emitting state")
    entries = []
    for phones, body in (
        (nonsilence_phones, _phone_entry(num_nonsil_states)),
        (silence_phones, _silence_entry(num_sil_states)),
    ):
        if phones:
            entries.append(
                "<TopologyEntry>\n<ForPhones>\n"
                + " ".join(str(p) for p in phones)
                + "\n</ForPhones>\n"
                + body
                + "\n</TopologyEntry>"
            )
    return "<Topology>\n" + "\n".join(entries) + "\n</Topology>\n"
