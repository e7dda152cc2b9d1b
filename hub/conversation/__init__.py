"""The conversation's words: the toy's system prompt and its canned lines."""
