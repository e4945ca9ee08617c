"""The prediction log: each process's spool, the writer process that drains it, the SQL store.

May import: the top-level modules only (the service and the monitor both read it).
"""
