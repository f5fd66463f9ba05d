"""Bank payouts in batches: ISO 20022 files, the batch book, the bank's answers."""
