"""The fault-injection campaign (DESIGN.md invariants 8-11): syscall errors, full disks, power loss."""
