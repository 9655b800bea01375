"""Pure rule that gives every source file its own output base, even when names collide."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fleet.media.output_names import PLAIN_NAMES, OutputNames, stem_base


@dataclass
class Naming:
    """Output base per source, plus the sources that were renamed or could not be named."""

    bases: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)


def assign_output_bases(sources: Iterable[str], owners: Mapping[str, str], names: OutputNames = PLAIN_NAMES) -> Naming:
    """Map each source to an output base, unique even on case-insensitive disks.

    By default `dir/take.mp3` writes `dir/take.*` (what media players look for). When several
    sources share that base (`take.mp3`, `take.wav`), the one whose finished transcript already
    owns the base keeps it (`owners`: base -> source in its commit record), so adding a file never
    moves existing transcripts; the others write under their full name (`take.wav.*`). A clash
    left after that (names differing only in case) is reported and the later source skipped. Every base
    is fitted to the destination (`names`: length, characters SMB refuses).
    """
    choice = {rel: names.fit(stem_base(rel)) for rel in sources}
    naming = Naming()
    while clashes := _clashes(choice):
        moved = False
        for members in clashes:
            movable = [m for m in members if m not in naming.renamed]
            owner = next((m for m in movable if owners.get(choice[m]) == m), None)
            for member in movable:
                if member != owner and choice[member] != names.fit(member):
                    others = ", ".join(m for m in members if m != member)
                    naming.renamed[member] = f"output name {choice[member]!r} is shared with {others}"
                    choice[member] = names.fit(member)
                    moved = True
        if not moved:  # only names equal but for case are left: nothing to fall back to
            for keeper, *losers in clashes:
                for loser in losers:
                    naming.conflicts[loser] = f"output name {choice[loser]!r} clashes with {keeper}"
                    del choice[loser]
    naming.bases = choice
    return naming


def _clashes(choice: Mapping[str, str]) -> list[list[str]]:
    """Groups of sources whose bases are equal ignoring case (exFAT, SMB and APFS fold case)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for rel, base in choice.items():
        groups[base.casefold()].append(rel)
    return [sorted(members) for members in groups.values() if len(members) > 1]
