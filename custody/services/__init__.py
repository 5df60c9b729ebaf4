"""Service functions: keyword-only, typed, each taking the session. They raise CustodyError subclasses."""
