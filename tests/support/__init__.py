"""Helper modules shared by the tests and by the child processes they start."""
