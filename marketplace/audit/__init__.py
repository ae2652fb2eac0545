"""The audit log: who did what to which record, when and why; append-only. Callers write it with
marketplace.audit.service.record (or record_many, set-based) in the transaction of their change."""
