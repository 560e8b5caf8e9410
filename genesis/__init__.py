"""Chain parameters: our genesis format, OPEN supply and allocations, validator set, fork schedule."""
