"""What the engine keeps on disk: atomic writes, the ledger, the vault of loot, history."""
