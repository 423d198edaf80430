"""channels.yaml: parsing, validation with file/line/key errors, the typed site model."""
