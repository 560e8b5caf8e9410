"""BFT proof of stake (Tendermint-style) as a pure state machine with no I/O."""
