"""Every write of the snapshot journal, one module per noun (as Zulip's actions/): environments, reports
(accepting them: the durable outbox and its sweeper) and ingest (the journal itself)."""
