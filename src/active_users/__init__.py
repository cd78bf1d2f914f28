"""Who is on a Django site right now, when each user was last seen, on Redis or the database."""

__version__ = "0.1.0.dev0"
