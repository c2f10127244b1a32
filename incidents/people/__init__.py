"""People: accounts, the roles granted to them, and the API tokens they act through."""
