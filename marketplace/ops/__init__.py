"""Operations: health, readiness, metrics, API docs, request logging and limits."""
