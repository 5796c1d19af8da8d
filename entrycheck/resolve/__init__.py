"""The resolvers, in the order each entry's walk runs them.

To add an indirect-flow strategy: write a `Resolver` (entrycheck/resolve/base.py) in a
module of its own, add it here, give it a case in sample_vmlinux and a test in
tests/resolve/. An edge belongs to the first resolver that adds it.
"""

from entrycheck.resolve.address_taken import AddressTaken
from entrycheck.resolve.alternatives import Alternatives
from entrycheck.resolve.data_objects import DataObjects
from entrycheck.resolve.direct import Direct
from entrycheck.resolve.dispatchers import Dispatchers
from entrycheck.resolve.far import Far
from entrycheck.resolve.fixups import Fixups
from entrycheck.resolve.handoff import Handoff
from entrycheck.resolve.idt import Idt
from entrycheck.resolve.jump_labels import JumpLabels
from entrycheck.resolve.jump_tables import JumpTables
from entrycheck.resolve.ops import Ops
from entrycheck.resolve.registers import Registers
from entrycheck.resolve.registrations import Registrations
from entrycheck.resolve.slots import Slots
from entrycheck.resolve.static_call import StaticCalls
from entrycheck.resolve.tables import Tables
from entrycheck.resolve.thunks import Thunks
from entrycheck.resolve.traps import Traps

RESOLVERS = (
    Direct, Thunks, Traps, JumpLabels, Fixups, JumpTables, Slots, Registers, Far, Handoff,
    Ops, StaticCalls, Alternatives, Idt, Dispatchers, Tables, Registrations, AddressTaken,
    DataObjects,
)
