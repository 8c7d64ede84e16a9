"""The sandbox: runs partner mini-programs out of the host process.

Not built yet: until it is, the host registers partner plugins but refuses to
start them (see README.md in this folder).
"""
