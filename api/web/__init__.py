"""The server-rendered web console (staff) and the residents' pages: HTML over the same services as
the JSON API, with cookie sessions and CSRF tokens instead of bearer tokens."""
