"""CAMEL's turn markers, shared by the role-play prompts (agents) and the role-flip rule (analyzers)."""

USER_MARKER = "Instruction:"
ASSISTANT_MARKER = "Solution:"
TASK_DONE = "<CAMEL_TASK_DONE>"
