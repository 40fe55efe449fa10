"""The isolation suite (test_isolation.py) in the schema isolation mode:
one application role, tenants kept apart by their schema and by
row-level security (docs/isolation.md)."""

import os

os.environ['CREWD_TEST_ISOLATION'] = 'schema'

import crewtest                             # noqa: E402
from test_isolation import *                # noqa: E402,F401,F403

if __name__ == '__main__':
    crewtest.main()
