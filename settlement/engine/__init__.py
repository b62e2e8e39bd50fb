"""The settlement engine: materialised imbalances and settlement bookings.

Unit of work: one local day of one tenant (92, 96 or 100 quarter-hours). Every unit runs in one
transaction under the lock of its day (a PostgreSQL advisory lock; SQLite serialises writers by
itself), so runs that repeat, overlap, race with ingestion or die halfway leave the ledger as one
clean run would, and several workers settle different days of one tenant at once. Within a unit (``units.settle_unit``):

1. groups with a settlement rule are settled bottom-up by their level in the hierarchy (leaves
   first), so a parent's net already contains its children's settlement bookings;
2. per rule window that has ended (``windows``), the child's net (its lines, excluding its own
   settlement bookings; ``nets``) is split by the targets' shares and compared with what is
   stored (``diff``); only the difference is written (``writers``): booked child -> parent
   (net > 0) or parent -> child (net < 0), spread over the window's quarter-hours and keyed by
   (rule version, target, window start, revision) in ``SettlementBooking``;
3. the unit's imbalances are recomputed with one aggregate over its lines (``imbalances``).
"""
