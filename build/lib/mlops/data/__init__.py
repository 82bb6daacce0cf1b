"""Tables: reading them, their statistics, schema and checks, and the prepared dataset."""
