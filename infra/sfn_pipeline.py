"""Option sfn: the state machine and its trigger (owned by the sfn work; placeholder signature)."""
