"""Everything about running a language model."""
