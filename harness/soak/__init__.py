"""`harness soak`: hours of seeded chaos against the peers, judged online, window by window."""
