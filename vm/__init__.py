"""The state machine: a py-evm Prague chain with chain-id enforcement, fee rules and native modules."""
