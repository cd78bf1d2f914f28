class StoreUnavailable(Exception):
    """The store did not answer; raised by the read functions of :mod:`active_users.api`."""
