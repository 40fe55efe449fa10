"""The permission table, walked: every tenant route of fcgi/routes.c,
with no token and with a viewer's, a member's and an admin's.

The routes are read from the source the server was built from (a
regular expression over the rows of the table), not from a copy here,
so a route added to the table is checked without touching this file.
A route's id segments get random UUIDs and a body gets "{}": a request
may then fail validation (422) or find nothing (404), which is fine;
only the answers about who may ask are checked:

  * no token: 401 (a route that needs no role answers the same with or
    without one, and never 403);
  * a role below the route's: 403;
  * the route's role or one above: anything but 401, 403, 405 or 500.
"""

import os
import re

import crewtest
from crewtest import StackTestCase, random_uuid
from stack import DEFAULT_PASSWORD, SRCDIR

ROUTES_C = os.path.join(SRCDIR, 'fcgi', 'routes.c')

# { "METHOD", "PATTERN", HOST_X, ROLE_X, handler, ... }
ROW_RE = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]*)"\s*,\s*(HOST_[A-Z]+)'
                    r'\s*,\s*(ROLE_[A-Z]+)\s*,\s*([A-Za-z_]\w*)\s*,')
TABLE_RE = re.compile(r'\broutes\[\]\s*=\s*\{(.*?)\n\};', re.S)
COMMENT_RE = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)
STRING_RE = re.compile(r'"(?:[^"\\\n]|\\.)*"')
PLACEHOLDER_RE = re.compile(r'\{[^/{}]*\}')

LEVEL = {'ROLE_NONE': 0, 'ROLE_VIEWER': 1, 'ROLE_MEMBER': 2,
         'ROLE_ADMIN': 3}
ROLES = ('viewer', 'member', 'admin')
BODY_METHODS = ('POST', 'PUT', 'PATCH')


class Route:
    def __init__(self, method, pattern, host, role, handler):
        self.method = method
        self.pattern = pattern
        self.host = host
        self.role = role
        self.handler = handler

    @property
    def level(self):
        return LEVEL[self.role]

    def __repr__(self):
        return '%s %s (%s)' % (self.method, self.pattern, self.role)


def read_route_table(path=ROUTES_C):
    """The rows of the route table, and the number of rows the table
    has (counted by their opening braces, outside strings and
    comments), so a row the expression misses cannot go unnoticed."""
    with open(path, encoding='utf-8') as f:
        source = COMMENT_RE.sub(' ', f.read())
    table = TABLE_RE.search(source)
    if table is None:
        raise AssertionError('no "routes[] = {" table in %s' % path)
    body = table.group(1)
    rows = [Route(*m.groups()) for m in ROW_RE.finditer(body)]
    braces = STRING_RE.sub('""', body).count('{')
    return rows, braces


def concrete_path(pattern):
    """The pattern with a random UUID in each placeholder segment."""
    return PLACEHOLDER_RE.sub(lambda m: random_uuid(), pattern)


class RoleTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.routes, cls.row_count = read_route_table()
        cls.tenant_routes = [r for r in cls.routes
                             if r.host == 'HOST_TENANT']

        # One user of each role, invited by the tenant's first admin
        # through the users endpoints, each with a token of their own.
        cls.tenant = cls.stack.new_tenant('roles')
        cls.tokens = {}
        for role in ROLES:
            email = '%s-%s@roles.test' % (role, os.urandom(4).hex())
            resp = cls.stack.request(
                'POST', '/api/v1/users', host=cls.tenant.slug,
                token=cls.tenant.token,
                json={'email': email, 'password': DEFAULT_PASSWORD,
                      'role': role, 'full_name': 'The %s' % role})
            if resp.status != 201:
                raise AssertionError('inviting a %s: %r' % (role, resp))
            cls.tokens[role] = cls.stack.login(cls.tenant.slug, email)

    def send(self, route, token):
        return self.stack.request(
            route.method, concrete_path(route.pattern),
            host=self.tenant.slug, token=token,
            json={} if route.method in BODY_METHODS else None)


class RouteTableTest(RoleTestCase):

    def test_every_row_of_the_table_is_read(self):
        self.assertEqual(len(self.routes), self.row_count,
                         'a row of %s has another shape: %r' % (
                             ROUTES_C, self.routes))
        self.assertGreater(len(self.tenant_routes), 0)
        for route in self.routes:
            with self.subTest(route=route):
                self.assertTrue(route.pattern.startswith('/'), route)
                self.assertIn(route.role, LEVEL)
                self.assertIn(route.host, ('HOST_APEX', 'HOST_TENANT',
                                           'HOST_ANY', 'HOST_METRICS'))

    def test_users_are_managed_by_admins_and_everyone_reads_me(self):
        users = {(r.method, r.pattern): r.role for r in self.tenant_routes
                 if r.pattern.startswith('/api/v1/users')}
        self.assertEqual(users, {
            ('GET', '/api/v1/users/me'): 'ROLE_VIEWER',
            ('GET', '/api/v1/users'): 'ROLE_ADMIN',
            ('POST', '/api/v1/users'): 'ROLE_ADMIN',
            ('GET', '/api/v1/users/{id}'): 'ROLE_ADMIN',
            ('PATCH', '/api/v1/users/{id}'): 'ROLE_ADMIN',
            ('DELETE', '/api/v1/users/{id}'): 'ROLE_ADMIN',
        })

    def test_only_login_needs_no_token_on_a_tenant_host(self):
        open_routes = [(r.method, r.pattern) for r in self.tenant_routes
                       if r.role == 'ROLE_NONE']
        self.assertEqual(open_routes, [('POST', '/api/v1/auth/login')])

    def test_the_invited_users_have_the_roles_they_were_given(self):
        for role in ROLES:
            with self.subTest(role=role):
                resp = self.stack.request('GET', '/api/v1/users/me',
                                          host=self.tenant.slug,
                                          token=self.tokens[role])
                self.assertEqual(self.assertJson(resp, 200)['role'], role)


class PermissionWalkTest(RoleTestCase):

    def test_every_route_without_a_token_answers_401(self):
        for route in self.tenant_routes:
            if route.level == 0:
                continue
            with self.subTest(route=route):
                resp = self.send(route, None)
                self.assertProblem(resp, 401)
                self.assertTrue(resp.headers.get('WWW-Authenticate', '')
                                .startswith('Bearer'), resp.headers)

    def test_every_route_answers_403_to_a_role_below_its_own(self):
        checked = 0
        for route in self.tenant_routes:
            for role in ROLES:
                if LEVEL['ROLE_' + role.upper()] >= route.level:
                    continue
                with self.subTest(route=route, role=role):
                    self.assertProblem(self.send(route, self.tokens[role]),
                                       403)
                    checked += 1
        self.assertGreater(checked, 0)

    def test_every_route_lets_its_role_and_the_roles_above_through(self):
        for route in self.tenant_routes:
            if route.level == 0:
                continue
            for role in ROLES:
                if LEVEL['ROLE_' + role.upper()] < route.level:
                    continue
                with self.subTest(route=route, role=role):
                    resp = self.send(route, self.tokens[role])
                    self.assertNotIn(resp.status, (401, 403, 405, 500),
                                     resp)

    def test_routes_without_a_role_answer_alike_with_or_without_tokens(self):
        for route in self.tenant_routes:
            if route.level != 0:
                continue
            anonymous = self.send(route, None)
            self.assertNotIn(anonymous.status, (403, 405, 500), anonymous)
            for role in ROLES:
                with self.subTest(route=route, role=role):
                    resp = self.send(route, self.tokens[role])
                    self.assertEqual(resp.status, anonymous.status, resp)

    def test_the_walk_changed_none_of_the_users(self):
        for route in self.tenant_routes:
            for role in ROLES:
                if LEVEL['ROLE_' + role.upper()] >= route.level > 0:
                    self.send(route, self.tokens[role])
        rows = self.stack.psql(
            "SELECT role, is_active FROM public.users WHERE tenant_id = "
            ":'t' ORDER BY created_at", t=self.tenant.id)
        self.assertEqual(rows, [('admin', 't'), ('viewer', 't'),
                                ('member', 't'), ('admin', 't')])


if __name__ == '__main__':
    crewtest.main()
