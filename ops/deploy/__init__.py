"""pyinfra facts and operations: the only place that imports pyinfra. They call the ops CLI."""
