"""The browse pages: page models and the incremental renderer."""
