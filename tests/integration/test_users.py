"""The users of a tenant: invitation, reading, listing, changes,
suspension, deletion, the last-admin rule, and passwords that never
leave the server.

Every response of this module is checked for secrets as it arrives:
no body ever holds a plain password used here, an Argon2 hash, or a
password / password_hash key."""

import os
import threading
import time

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for

USER_KEYS = {'id', 'tenant_id', 'email', 'full_name', 'role', 'is_active',
             'created_at', 'updated_at'}

# Every plain password this module sends; none may come back.
SECRETS = set()


def new_password():
    """A fresh password of 20 bytes; its space and '!' cannot be part of
    an id, a timestamp or a cursor, so finding it in a body means it
    leaked."""
    password = 'pw %s !' % os.urandom(7).hex()
    SECRETS.add(password)
    return password


def new_email(prefix='user'):
    return '%s-%s@example.test' % (prefix, os.urandom(4).hex())


def keys_of(value):
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        out = set(value)
        for v in value.values():
            out |= keys_of(v)
        return out
    if isinstance(value, list):
        out = set()
        for v in value:
            out |= keys_of(v)
        return out
    return set()


class UserTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('users')
        SECRETS.add(cls.tenant.password)
        cls.admin_id = cls.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=cls.tenant.id)

    # -- requests --------------------------------------------------------

    def assertNoSecret(self, resp):
        for secret in SECRETS:
            self.assertNotIn(secret.encode(), resp.body, resp)
        self.assertNotIn(b'$argon2', resp.body, resp)
        if resp.media_type == 'application/json':
            self.assertFalse({'password', 'password_hash'} &
                             keys_of(resp.json()), resp)

    def call(self, method, path, token=None, tenant=None, **kwargs):
        tenant = tenant or self.tenant
        resp = self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token is None else token, **kwargs)
        self.assertNoSecret(resp)
        return resp

    def login(self, email, password, tenant=None):
        resp = self.stack.request(
            'POST', '/api/v1/auth/login', host=(tenant or self.tenant).slug,
            json={'email': email, 'password': password})
        self.assertNoSecret(resp)
        return resp

    def token_of(self, email, password, tenant=None):
        return self.assertJson(self.login(email, password, tenant),
                               200)['access_token']

    def create(self, tenant=None, **fields):
        """Invites a user; returns (body, response, password)."""
        body = {'email': new_email(), 'password': new_password(),
                'role': 'member'}
        body.update(fields)
        resp = self.call('POST', '/api/v1/users', tenant=tenant, json=body)
        return self.assertJson(resp, 201), resp, body['password']

    def stored(self, user_id, columns='email, full_name, role, is_active'):
        return self.stack.psql(
            "SELECT %s FROM public.users WHERE id = :'id'" % columns,
            id=user_id)

    def count(self, tenant=None):
        return int(self.stack.psql_value(
            "SELECT count(*) FROM public.users WHERE tenant_id = :'t'",
            t=(tenant or self.tenant).id))


class UserCreateTest(UserTestCase):

    def test_create_answers_201_with_location_etag_and_the_user(self):
        email = new_email('create')
        body, resp, _ = self.create(email=email, role='viewer',
                                    full_name='Ada Lovelace')
        self.assertEqual(set(body), USER_KEYS)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['email'], email)
        self.assertEqual(body['full_name'], 'Ada Lovelace')
        self.assertEqual(body['role'], 'viewer')
        self.assertIs(body['is_active'], True)
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/users/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)
        self.assertEqual(self.stored(body['id']),
                         [(email, 'Ada Lovelace', 'viewer', 't')])

    def test_create_without_full_name_stores_null(self):
        body, _, _ = self.create()
        self.assertIsNone(body['full_name'])
        self.assertEqual(self.stored(body['id'], 'full_name'), [(None,)])

    def test_create_stores_an_argon2id_hash_and_the_user_can_log_in(self):
        body, _, password = self.create(role='member')
        stored_hash = self.stored(body['id'], 'password_hash')[0][0]
        self.assertTrue(stored_hash.startswith('$argon2id$'), stored_hash)
        self.assertNotIn(password, stored_hash)

        token = self.token_of(body['email'], password)
        me = self.assertJson(self.call('GET', '/api/v1/users/me',
                                       token=token), 200)
        self.assertEqual(me, body)

    def test_create_normalises_the_email_and_login_accepts_any_case(self):
        local = 'Mixed.Case-%s' % os.urandom(4).hex()
        body, _, password = self.create(email=local + '@Example.TEST')
        expected = (local + '@example.test').lower()
        self.assertEqual(body['email'], expected)
        self.assertEqual(self.stored(body['id'], 'email'), [(expected,)])
        self.token_of(local.upper() + '@EXAMPLE.test', password)

    def test_create_can_invite_a_suspended_user(self):
        body, _, password = self.create(is_active=False)
        self.assertIs(body['is_active'], False)
        self.assertProblem(self.login(body['email'], password), 401)

    def test_create_without_required_fields_answers_422_naming_each(self):
        before = self.count()
        resp = self.call('POST', '/api/v1/users', json={})
        self.assertProblem(resp, 422, fields=['/email', '/password',
                                              '/role'])
        resp = self.call('POST', '/api/v1/users',
                         json={'email': new_email(), 'full_name': 'x'})
        self.assertProblem(resp, 422, fields=['/password', '/role'])
        self.assertEqual(self.count(), before)

    def test_create_with_invalid_fields_answers_422_naming_the_field(self):
        cases = [
            ('email', 5), ('email', None), ('email', ''),
            ('email', ['a@b.test']), ('email', 'no-at-sign.test'),
            ('email', 'nodomain@'), ('email', '@example.test'),
            ('email', 'a@localhost'), ('email', 'two@@example.test'),
            ('email', 'a@b@example.test'), ('email', 'sp ace@example.test'),
            ('email', 'tab\t@example.test'), ('email', 'a@.example.test'),
            ('email', 'a@example.test.'),
            ('email', 'a' * 250 + '@example.test'),
            ('password', 5), ('password', None), ('password', ''),
            ('password', 'pw 1 !'), ('password', ['x' * 10]),
            ('password', {'a': 'b'}), ('password', True),
            ('full_name', 5), ('full_name', ''), ('full_name', 'x' * 256),
            ('full_name', 'new\nline'), ('full_name', ['x']),
            ('role', 'owner'), ('role', 'Admin'), ('role', ''),
            ('role', None), ('role', 3), ('role', ['admin']),
            ('is_active', 'true'), ('is_active', 1), ('is_active', None),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                body = {'email': new_email(), 'password': new_password(),
                        'role': 'member', field: value}
                resp = self.call('POST', '/api/v1/users', json=body)
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_accepts_the_longest_full_name_and_email(self):
        email = 'a' * (254 - len('@example.test') - 8) + \
            os.urandom(4).hex() + '@example.test'
        self.assertEqual(len(email), 254)
        body, _, _ = self.create(email=email, full_name='é' * 255)
        self.assertEqual(body['email'], email)
        self.assertEqual(body['full_name'], 'é' * 255)

    def test_create_with_every_problem_at_once_names_each(self):
        resp = self.call('POST', '/api/v1/users', json={
            'email': 'bad', 'password': 'pw 2 !', 'role': 'owner',
            'full_name': 7, 'colour': 'red'})
        self.assertProblem(resp, 422, fields=['/email', '/password',
                                              '/role', '/full_name',
                                              '/colour'])

    def test_create_with_an_unknown_field_answers_422(self):
        before = self.count()
        for field in ('colour', 'name', 'is_admin', 'password_confirm'):
            with self.subTest(field=field):
                body = {'email': new_email(), 'password': new_password(),
                        'role': 'member', field: 'x'}
                resp = self.call('POST', '/api/v1/users', json=body)
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_with_server_owned_fields_answers_422(self):
        before = self.count()
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z'),
                             ('password_hash', '$argon2id$v=19$x')):
            with self.subTest(field=field):
                body = {'email': new_email(), 'password': new_password(),
                        'role': 'member', field: value}
                resp = self.call('POST', '/api/v1/users', json=body)
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_mass_assignment_of_tenant_id_id_or_hash_stores_nothing(self):
        other = self.stack.new_tenant('victim')
        forced_id = random_uuid()
        known_hash = self.stack.psql_value(
            "SELECT password_hash FROM public.users WHERE id = :'id'",
            id=self.admin_id)
        for field, value in (('tenant_id', other.id), ('id', forced_id),
                             ('password_hash', known_hash)):
            with self.subTest(field=field):
                email = new_email('mass')
                resp = self.call('POST', '/api/v1/users', json={
                    'email': email, 'password': new_password(),
                    'role': 'admin', field: value})
                self.assertProblem(resp, 422, fields=['/' + field])
                self.assertEqual(self.stack.psql(
                    "SELECT id FROM public.users WHERE email = :'e'",
                    e=email), [])
        self.assertEqual(self.stored(forced_id), [])
        self.assertEqual(self.count(other), 1)

    def test_duplicate_email_answers_409_in_any_case(self):
        body, _, _ = self.create()
        before = self.count()
        for email in (body['email'], body['email'].upper()):
            with self.subTest(email=email):
                resp = self.call('POST', '/api/v1/users', json={
                    'email': email, 'password': new_password(),
                    'role': 'viewer'})
                self.assertProblem(resp, 409, fields=['/email'])
        self.assertEqual(self.count(), before)
        self.assertEqual(self.stored(body['id'], 'role'), [('member',)])

    def test_same_email_in_another_tenant_is_another_user(self):
        other = self.stack.new_tenant('second')
        body, _, _ = self.create()
        theirs, _, password = self.create(tenant=other, email=body['email'])
        self.assertNotEqual(theirs['id'], body['id'])
        self.assertEqual(theirs['tenant_id'], other.id)
        self.token_of(body['email'], password, tenant=other)

    def test_password_over_the_byte_cap_answers_400(self):
        before = self.count()
        # 257 bytes, 129 characters of two bytes each (258 bytes).
        for password in ('x' * 257, 'é' * 129, 'x' * 100000):
            SECRETS.add(password)
            with self.subTest(length=len(password.encode())):
                resp = self.call('POST', '/api/v1/users', json={
                    'email': new_email(), 'password': password,
                    'role': 'member'})
                self.assertProblem(resp, 400)
        self.assertEqual(self.count(), before)

    def test_password_over_the_cap_answers_400_even_with_other_errors(self):
        password = 'y' * 300
        SECRETS.add(password)
        resp = self.call('POST', '/api/v1/users', json={
            'email': 'bad', 'password': password, 'role': 'owner'})
        body = self.assertProblem(resp, 400)
        self.assertIn('256 bytes', body['detail'])

    def test_password_of_exactly_the_cap_is_accepted(self):
        password = 'z' * 254 + ' !'
        SECRETS.add(password)
        body, _, _ = self.create(password=password)
        self.token_of(body['email'], password)

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/users', body='{"email": "x",',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def test_create_with_a_body_that_is_not_an_object_answers_422(self):
        resp = self.call('POST', '/api/v1/users',
                         json=[{'email': new_email()}])
        self.assertProblem(resp, 422)


class UserReadTest(UserTestCase):

    def test_get_answers_200_with_the_user_and_its_etag(self):
        created, create_resp, _ = self.create(full_name='Grace')
        resp = self.call('GET', '/api/v1/users/' + created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_upper_case_id_answers_the_user(self):
        created, _, _ = self.create()
        resp = self.call('GET', '/api/v1/users/' + created['id'].upper())
        self.assertEqual(self.assertJson(resp, 200)['id'], created['id'])

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(
            self.call('GET', '/api/v1/users/' + random_uuid()), 404)

    def test_me_is_still_the_calling_user(self):
        body = self.assertJson(self.call('GET', '/api/v1/users/me'), 200)
        self.assertEqual(body['id'], self.admin_id)
        self.assertEqual(set(body), USER_KEYS)
        self.assertEqual(
            self.assertJson(self.call('GET', '/api/v1/users/' +
                                      self.admin_id), 200), body)

    def test_get_with_a_query_parameter_answers_400(self):
        created, _, _ = self.create()
        self.assertProblem(
            self.call('GET', '/api/v1/users/%s?x=1' % created['id']), 400)


class UserListTest(UserTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own: its admin and these five, in this order.
        cls.tenant = cls.stack.new_tenant('list')
        cls.admin_id = cls.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=cls.tenant.id)
        cls.users = [('member', True), ('viewer', True), ('member', False),
                     ('admin', True), ('viewer', False)]
        cls.ids = [cls.admin_id]
        for role, active in cls.users:
            time.sleep(0.002)
            resp = cls.stack.request(
                'POST', '/api/v1/users', host=cls.tenant.slug,
                token=cls.tenant.token,
                json={'email': new_email('list'), 'role': role,
                      'password': new_password(), 'is_active': active})
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
        cls.users.insert(0, ('admin', True))

    def page(self, query):
        return self.call('GET', '/api/v1/users' + query)

    def expected(self, role=None, active=None):
        """Ids of the users with this role and state, newest first."""
        return [i for i, (r, a) in reversed(list(zip(self.ids, self.users)))
                if (role is None or r == role) and
                (active is None or a == active)]

    def walk(self, query, limit):
        """Every page of a list; returns (ids, page sizes)."""
        ids, sizes = [], []
        cursor = None
        while len(sizes) < 20:
            q = '%s%slimit=%d' % (query, '&' if query else '?', limit)
            if cursor is not None:
                q += '&cursor=' + cursor
            body = self.assertJson(self.page(q), 200)
            sizes.append(len(body['items']))
            ids += [u['id'] for u in body['items']]
            cursor = body['next_cursor']
            if cursor is None:
                break
        return ids, sizes

    def test_list_answers_the_tenants_users_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual([u['id'] for u in body['items']], self.expected())
        self.assertIsNone(body['next_cursor'])
        for item in body['items']:
            self.assertEqual(set(item), USER_KEYS)
            self.assertEqual(item['tenant_id'], self.tenant.id)
        self.assertEqual(body['items'][-1]['email'], self.tenant.email)

    def test_list_pages_with_limit_and_cursor(self):
        ids, sizes = self.walk('', 2)
        self.assertEqual(sizes, [2, 2, 2])
        self.assertEqual(ids, self.expected())

    def test_list_filters_by_role(self):
        for role in ('admin', 'member', 'viewer'):
            with self.subTest(role=role):
                body = self.assertJson(self.page('?role=' + role), 200)
                self.assertEqual([u['id'] for u in body['items']],
                                 self.expected(role=role))
                self.assertTrue(all(u['role'] == role
                                    for u in body['items']))

    def test_list_filters_by_is_active(self):
        for text, value in (('true', True), ('false', False)):
            with self.subTest(is_active=text):
                body = self.assertJson(self.page('?is_active=' + text), 200)
                self.assertEqual([u['id'] for u in body['items']],
                                 self.expected(active=value))

    def test_list_combines_filters_and_pages_through_them(self):
        ids, sizes = self.walk('?role=member&is_active=true', 1)
        self.assertEqual(ids, self.expected(role='member', active=True))
        self.assertEqual(sizes, [1])
        ids, sizes = self.walk('?role=admin&is_active=true', 1)
        self.assertEqual(ids, self.expected(role='admin', active=True))
        self.assertEqual(sizes, [1, 1])
        ids, sizes = self.walk('?is_active=true', 2)
        self.assertEqual(ids, self.expected(active=True))
        self.assertEqual(sizes, [2, 2])

    def test_list_with_a_bad_filter_answers_400_naming_it(self):
        for query, name in (('?role=owner', 'role'), ('?role=', 'role'),
                            ('?role=Admin', 'role'),
                            ('?is_active=yes', 'is_active'),
                            ('?is_active=1', 'is_active'),
                            ('?limit=0', 'limit'), ('?limit=101', 'limit'),
                            ('?cursor=garbage', 'cursor')):
            with self.subTest(query=query):
                self.assertProblem(self.page(query), 400, fields=[name])

    def test_list_with_an_unknown_or_repeated_parameter_answers_400(self):
        for query in ('?email=a@b.test', '?tenant_id=' + self.tenant.id,
                      '?role=admin&role=viewer'):
            with self.subTest(query=query):
                self.assertProblem(self.page(query), 400)

    def test_list_shows_no_user_of_another_tenant(self):
        other = self.stack.new_tenant('other')
        body = self.assertJson(self.page('?limit=100'), 200)
        self.assertEqual([u['id'] for u in body['items']], self.expected())
        theirs = self.assertJson(
            self.call('GET', '/api/v1/users', tenant=other), 200)
        self.assertEqual([u['email'] for u in theirs['items']],
                         [other.email])


class UserUpdateTest(UserTestCase):

    def patch(self, user_id, body, **kwargs):
        return self.call('PATCH', '/api/v1/users/' + user_id, json=body,
                         **kwargs)

    def test_patch_changes_only_the_given_fields(self):
        created, resp, _ = self.create(full_name='Old Name', role='viewer')
        time.sleep(0.01)
        patched = self.patch(created['id'], {'full_name': 'New Name',
                                             'role': 'member'})
        body = self.assertJson(patched, 200)
        self.assertEqual(body, dict(created, full_name='New Name',
                                    role='member',
                                    updated_at=body['updated_at']))
        self.assertGreater(body['updated_at'], created['updated_at'])
        self.assertNotEqual(patched.headers.get('ETag'),
                            resp.headers.get('ETag'))
        self.assertEqual(self.stored(created['id']),
                         [(created['email'], 'New Name', 'member', 't')])

    def test_patch_can_clear_the_full_name(self):
        created, _, _ = self.create(full_name='Someone')
        body = self.assertJson(self.patch(created['id'],
                                          {'full_name': None}), 200)
        self.assertIsNone(body['full_name'])
        self.assertEqual(self.stored(created['id'], 'full_name'), [(None,)])

    def test_patch_can_promote_to_admin(self):
        created, _, password = self.create(role='viewer')
        self.assertEqual(self.assertJson(
            self.patch(created['id'], {'role': 'admin'}), 200)['role'],
            'admin')
        token = self.token_of(created['email'], password)
        self.assertJson(self.call('GET', '/api/v1/users', token=token), 200)

    def test_patch_password_resets_it_and_answers_without_it(self):
        created, _, old = self.create()
        old_hash = self.stored(created['id'], 'password_hash')[0][0]
        new = new_password()
        body = self.assertJson(self.patch(created['id'], {'password': new}),
                               200)
        self.assertEqual(set(body), USER_KEYS)
        new_hash = self.stored(created['id'], 'password_hash')[0][0]
        self.assertNotEqual(new_hash, old_hash)
        self.assertTrue(new_hash.startswith('$argon2id$'))
        self.assertNotIn(new, new_hash)
        self.assertProblem(self.login(created['email'], old), 401)
        self.token_of(created['email'], new)

    def test_patch_password_over_the_cap_answers_400_and_keeps_it(self):
        created, _, password = self.create()
        before = self.stored(created['id'], 'password_hash, updated_at')
        long_password = 'q' * 257
        SECRETS.add(long_password)
        resp = self.patch(created['id'], {'password': long_password,
                                          'role': 'owner'})
        self.assertProblem(resp, 400)
        self.assertEqual(self.stored(created['id'],
                                     'password_hash, updated_at'), before)
        self.token_of(created['email'], password)

    def test_patch_password_too_short_or_not_a_string_answers_422(self):
        created, _, password = self.create()
        before = self.stored(created['id'], 'password_hash, updated_at')
        for value in ('pw 3 !', '', None, 12345678, ['pw 4 long !']):
            with self.subTest(value=value):
                self.assertProblem(self.patch(created['id'],
                                              {'password': value}),
                                   422, fields=['/password'])
        self.assertEqual(self.stored(created['id'],
                                     'password_hash, updated_at'), before)

    def test_patch_of_the_email_answers_422(self):
        created, _, _ = self.create()
        for value in (new_email(), created['email'], None):
            with self.subTest(value=value):
                self.assertProblem(self.patch(created['id'],
                                              {'email': value}),
                                   422, fields=['/email'])
        self.assertEqual(self.stored(created['id'], 'email'),
                         [(created['email'],)])

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _, _ = self.create()
        for patch, field in (({'role': 'owner'}, '/role'),
                             ({'role': None}, '/role'),
                             ({'role': 1}, '/role'),
                             ({'is_active': 'no'}, '/is_active'),
                             ({'is_active': None}, '/is_active'),
                             ({'full_name': 5}, '/full_name'),
                             ({'full_name': ''}, '/full_name'),
                             ({'full_name': 'x' * 256}, '/full_name'),
                             ({'colour': 'red'}, '/colour')):
            with self.subTest(patch=patch):
                self.assertProblem(self.patch(created['id'], patch), 422,
                                   fields=[field])
        got = self.assertJson(
            self.call('GET', '/api/v1/users/' + created['id']), 200)
        self.assertEqual(got, created)

    def test_patch_of_server_owned_fields_answers_422(self):
        created, _, _ = self.create(role='viewer')
        other = self.stack.new_tenant('elsewhere')
        for patch in ({'id': random_uuid()}, {'tenant_id': other.id},
                      {'created_at': '2026-01-01T00:00:00Z'},
                      {'updated_at': '2026-01-01T00:00:00Z'},
                      {'password_hash': '$argon2id$v=19$x'},
                      {'tenant_id': other.id, 'role': 'admin'}):
            with self.subTest(patch=sorted(patch)):
                resp = self.patch(created['id'], patch)
                self.assertProblem(resp, 422, fields=[
                    '/' + k for k in patch if k != 'role'])
        got = self.assertJson(
            self.call('GET', '/api/v1/users/' + created['id']), 200)
        self.assertEqual(got, created)
        self.assertEqual(self.stored(created['id'], 'tenant_id'),
                         [(self.tenant.id,)])

    def test_empty_patch_answers_the_user_unchanged(self):
        created, resp, _ = self.create()
        patched = self.patch(created['id'], {})
        self.assertEqual(self.assertJson(patched, 200), created)
        self.assertEqual(patched.headers.get('ETag'), resp.headers['ETag'])

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp, _ = self.create()
        old_etag = resp.headers['ETag']
        self.assertJson(self.patch(created['id'], {'full_name': 'second'}),
                        200)
        stale = self.patch(created['id'], {'full_name': 'third'},
                           headers={'If-Match': old_etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'full_name'),
                         [('second',)])

    def test_patch_of_the_password_with_a_stale_if_match_keeps_it(self):
        created, resp, password = self.create()
        self.assertJson(self.patch(created['id'], {'full_name': 'x'}), 200)
        stale = self.patch(created['id'], {'password': new_password()},
                           headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.token_of(created['email'], password)

    def test_patch_with_the_current_if_match_answers_200(self):
        created, _, _ = self.create()
        current = self.call('GET', '/api/v1/users/' + created['id'])
        resp = self.patch(created['id'], {'full_name': 'matched'},
                          headers={'If-Match': current.headers['ETag']})
        self.assertEqual(self.assertJson(resp, 200)['full_name'], 'matched')
        self.assertNotEqual(resp.headers.get('ETag'),
                            current.headers['ETag'])

    def test_patch_of_an_unknown_id_answers_404(self):
        self.assertProblem(self.patch(random_uuid(), {'full_name': 'x'}),
                           404)


class UserDeleteTest(UserTestCase):

    def test_delete_answers_204_and_the_user_is_gone(self):
        created, _, password = self.create()
        token = self.token_of(created['email'], password)
        resp = self.call('DELETE', '/api/v1/users/' + created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(
            self.call('GET', '/api/v1/users/' + created['id']), 404)
        self.assertEqual(self.stored(created['id']), [])
        self.assertProblem(self.login(created['email'], password), 401)
        self.assertProblem(self.call('GET', '/api/v1/users/me',
                                     token=token), 401)

    def test_deleted_users_email_can_be_invited_again(self):
        created, _, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/users/' + created['id']), 204)
        again, _, _ = self.create(email=created['email'])
        self.assertNotEqual(again['id'], created['id'])

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp, _ = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'full_name': 'changed'}), 200)
        stale = self.call('DELETE', '/api/v1/users/' + created['id'],
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_delete_with_the_current_if_match_answers_204(self):
        created, resp, _ = self.create()
        deleted = self.call('DELETE', '/api/v1/users/' + created['id'],
                            headers={'If-Match': resp.headers['ETag']})
        self.assertStatus(deleted, 204)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_twice_answers_404(self):
        created, _, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/users/' + created['id']), 204)
        self.assertProblem(
            self.call('DELETE', '/api/v1/users/' + created['id']), 404)

    def test_delete_with_a_query_parameter_answers_400(self):
        created, _, _ = self.create()
        self.assertProblem(
            self.call('DELETE', '/api/v1/users/%s?force=true' %
                      created['id']), 400)
        self.assertEqual(len(self.stored(created['id'])), 1)


class SuspensionTest(UserTestCase):
    """Suspension and role changes take effect on the next request, not
    when the token expires."""

    def test_suspended_user_cannot_log_in_and_their_token_answers_401(self):
        created, _, password = self.create(role='member')
        token = self.token_of(created['email'], password)
        self.assertJson(self.call('GET', '/api/v1/agents', token=token), 200)

        body = self.assertJson(self.call(
            'PATCH', '/api/v1/users/' + created['id'],
            json={'is_active': False}), 200)
        self.assertIs(body['is_active'], False)

        self.assertProblem(self.login(created['email'], password), 401)
        for path in ('/api/v1/agents', '/api/v1/users/me'):
            with self.subTest(path=path):
                self.assertProblem(self.call('GET', path, token=token), 401)

    def test_a_password_reset_retires_every_token_of_the_user(self):
        created, _, password = self.create(role='member')
        old = self.token_of(created['email'], password)
        self.assertJson(self.call('GET', '/api/v1/agents', token=old), 200)

        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'password': 'a-new-password-42'}),
                        200)
        self.assertProblem(self.call('GET', '/api/v1/agents', token=old),
                           401)
        new = self.token_of(created['email'], 'a-new-password-42')
        self.assertJson(self.call('GET', '/api/v1/agents', token=new), 200)

    def test_a_token_from_before_a_suspension_stays_dead_after_it(self):
        created, _, password = self.create(role='member')
        old = self.token_of(created['email'], password)
        for active in (False, True):
            self.assertJson(self.call(
                'PATCH', '/api/v1/users/' + created['id'],
                json={'is_active': active}), 200)
        self.assertProblem(self.call('GET', '/api/v1/agents', token=old),
                           401)

    def test_reactivated_user_can_log_in_again(self):
        created, _, password = self.create(is_active=False)
        self.assertProblem(self.login(created['email'], password), 401)
        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'is_active': True}), 200)
        token = self.token_of(created['email'], password)
        self.assertJson(self.call('GET', '/api/v1/users/me', token=token),
                        200)

    def test_demoted_admins_token_answers_403_on_admin_endpoints(self):
        created, _, password = self.create(role='admin')
        token = self.token_of(created['email'], password)
        self.assertJson(self.call('GET', '/api/v1/users', token=token), 200)

        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'role': 'member'}), 200)

        for method, path, body in (
                ('GET', '/api/v1/users', None),
                ('POST', '/api/v1/users', {'email': new_email(),
                                           'password': new_password(),
                                           'role': 'admin'}),
                ('GET', '/api/v1/users/' + self.admin_id, None),
                ('PATCH', '/api/v1/users/' + created['id'],
                 {'role': 'admin'}),
                ('DELETE', '/api/v1/users/' + self.admin_id, None)):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.call(method, path, token=token,
                                             json=body), 403)
        me = self.assertJson(self.call('GET', '/api/v1/users/me',
                                       token=token), 200)
        self.assertEqual(me['role'], 'member')
        self.assertEqual(self.stored(created['id'], 'role'), [('member',)])
        self.assertEqual(self.stored(self.admin_id, 'is_active'), [('t',)])

    def test_demotion_to_viewer_takes_writes_away_at_once(self):
        created, _, password = self.create(role='member')
        token = self.token_of(created['email'], password)
        agent = {'name': 'a', 'role': 'r', 'goal': 'g'}
        self.assertJson(self.call('POST', '/api/v1/agents', token=token,
                                  json=agent), 201)
        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'role': 'viewer'}), 200)
        self.assertProblem(self.call('POST', '/api/v1/agents', token=token,
                                     json=agent), 403)
        self.assertJson(self.call('GET', '/api/v1/agents', token=token), 200)

    def agent_names(self):
        return self.stack.psql(
            'SELECT name FROM :"s".agents ORDER BY name',
            superuser=True, s=self.stack.psql_value(
                "SELECT db_schema FROM public.tenants WHERE id = :'t'",
                t=self.tenant.id))

    def test_refusal_outranks_what_the_handler_found(self):
        """A resource's routes check the token's user in the round trip
        of their first statement (fcgi/worker.c): whatever the handler
        made of the request, a refused user gets the refusal, and a
        write it carried is rolled back."""
        created, _, password = self.create(role='member')
        token = self.token_of(created['email'], password)
        viewer, _, viewer_password = self.create(role='viewer')
        viewer_token = self.token_of(viewer['email'], viewer_password)
        self.assertJson(self.call('PATCH', '/api/v1/users/' + created['id'],
                                  json={'is_active': False}), 200)
        before = self.agent_names()

        good = {'name': 'refused write', 'role': 'r', 'goal': 'g'}
        for method, path, body, status in (
                ('POST', '/api/v1/agents', good, 401),
                ('POST', '/api/v1/agents', {'name': 7}, 401),
                ('POST', '/api/v1/agents', None, 401),
                ('GET', '/api/v1/agents/' + random_uuid(), None, 401),
                ('GET', '/api/v1/agents?limit=nope', None, 401),
                ('PATCH', '/api/v1/agents/' + random_uuid(), good, 401),
                ('DELETE', '/api/v1/agents/' + random_uuid(), None, 401)):
            with self.subTest(method=method, path=path, body=body):
                resp = self.call(method, path, token=token, json=body)
                self.assertProblem(resp, status)
                self.assertIn('invalid_token',
                              resp.headers.get('WWW-Authenticate', ''))
        for body in (good, {'name': 7}):
            with self.subTest(viewer=body):
                self.assertProblem(self.call(
                    'POST', '/api/v1/agents', token=viewer_token,
                    json=body), 403)
        self.assertEqual(self.agent_names(), before)


class CrossTenantTest(UserTestCase):
    """Another tenant's user ids answer exactly what an unknown id
    answers, for every verb, and nothing changes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.stack.new_tenant('foreign')

    def test_another_tenants_user_ids_answer_404_for_every_verb(self):
        theirs, _, password = self.create(tenant=self.other, role='viewer',
                                          full_name='Theirs')
        other_admin = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t' AND "
            "role = 'admin'", t=self.other.id)
        for user_id in (theirs['id'], other_admin):
            for method, body in (
                    ('GET', None),
                    ('PATCH', {'role': 'admin'}),
                    ('PATCH', {'is_active': False}),
                    ('PATCH', {'password': new_password()}),
                    ('PATCH', {}),
                    ('DELETE', None)):
                with self.subTest(user=user_id, method=method, body=body):
                    path = '/api/v1/users/' + user_id
                    mine = self.call(method, path, json=body)
                    nowhere = self.call(method, '/api/v1/users/' +
                                        random_uuid(), json=body)
                    self.assertProblem(mine, 404)
                    self.assertSameProblem(mine, nowhere)

        self.assertEqual(self.stored(theirs['id'], 'full_name, role, '
                                     'is_active'),
                         [('Theirs', 'viewer', 't')])
        self.assertEqual(self.stored(other_admin, 'role, is_active'),
                         [('admin', 't')])
        got = self.assertJson(self.call('GET', '/api/v1/users/' +
                                        theirs['id'], tenant=self.other),
                              200)
        self.assertEqual(got, theirs)
        self.token_of(theirs['email'], password, tenant=self.other)

    def test_token_of_another_tenant_answers_401(self):
        target, _, _ = self.create()
        for method, path in (('GET', '/api/v1/users'),
                             ('GET', '/api/v1/users/' + target['id']),
                             ('DELETE', '/api/v1/users/' + target['id'])):
            with self.subTest(method=method, path=path):
                self.assertProblem(self.call(method, path,
                                             token=self.other.token), 401)
        self.assertEqual(len(self.stored(target['id'])), 1)


class LogTest(UserTestCase):

    def test_passwords_never_reach_the_logs(self):
        created, _, password = self.create()
        duplicate = new_password()
        self.call('POST', '/api/v1/users', json={
            'email': created['email'], 'password': duplicate,
            'role': 'member'})
        reset = new_password()
        self.call('PATCH', '/api/v1/users/' + created['id'],
                  json={'password': reset, 'role': 'owner'})
        self.call('PATCH', '/api/v1/users/' + created['id'],
                  json={'password': reset})
        self.login(created['email'], password)
        self.login(created['email'], reset)
        self.call('PATCH', '/api/v1/users/' + random_uuid(),
                  json={'password': new_password()})

        logs = self.stack.crewd_log() + self.stack.nginx_log()
        self.assertIn('/api/v1/users', logs)
        for secret in SECRETS:
            self.assertNotIn(secret, logs)
        self.assertNotIn('$argon2', logs)


class LastAdminTest(UserTestCase):
    """A tenant keeps at least one active admin, whatever the order or
    timing of requests; and an admin cannot delete or suspend their own
    account."""

    def setUp(self):
        # A fresh tenant for each test: its admin is the only one.
        self.tenant = self.stack.new_tenant('admins')
        self.admin_id = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=self.tenant.id)

    def active_admins(self):
        return sorted(r[0] for r in self.stack.psql(
            "SELECT id FROM public.users WHERE tenant_id = :'t' AND "
            "role = 'admin' AND is_active", t=self.tenant.id))

    def second_admin(self):
        """Another active admin, with their own token."""
        created, _, password = self.create(role='admin')
        return created, self.token_of(created['email'], password)

    def test_the_last_admin_cannot_demote_themself(self):
        for role in ('member', 'viewer'):
            with self.subTest(role=role):
                resp = self.call('PATCH', '/api/v1/users/' + self.admin_id,
                                 json={'role': role})
                body = self.assertProblem(resp, 409)
                self.assertIn('last active admin', body['detail'])
        self.assertEqual(self.active_admins(), [self.admin_id])

    def test_an_admin_cannot_suspend_themself(self):
        resp = self.call('PATCH', '/api/v1/users/' + self.admin_id,
                         json={'is_active': False})
        body = self.assertProblem(resp, 409)
        self.assertIn('own account', body['detail'])
        self.second_admin()
        self.assertProblem(self.call('PATCH', '/api/v1/users/' +
                                     self.admin_id,
                                     json={'is_active': False}), 409)
        self.assertEqual(self.stored(self.admin_id, 'is_active'), [('t',)])

    def test_an_admin_cannot_delete_themself(self):
        for with_second_admin in (False, True):
            if with_second_admin:
                self.second_admin()
            with self.subTest(second_admin=with_second_admin):
                resp = self.call('DELETE', '/api/v1/users/' + self.admin_id)
                body = self.assertProblem(resp, 409)
                self.assertIn('own account', body['detail'])
        self.assertEqual(len(self.stored(self.admin_id)), 1)

    def test_an_admin_can_demote_themself_while_another_admin_exists(self):
        second, _ = self.second_admin()
        body = self.assertJson(self.call(
            'PATCH', '/api/v1/users/' + self.admin_id,
            json={'role': 'member'}), 200)
        self.assertEqual(body['role'], 'member')
        self.assertEqual(self.active_admins(), [second['id']])
        self.assertProblem(self.call('GET', '/api/v1/users'), 403)

    def test_a_suspended_admin_does_not_count(self):
        suspended, _, _ = self.create(role='admin', is_active=False)
        resp = self.call('PATCH', '/api/v1/users/' + self.admin_id,
                         json={'role': 'viewer'})
        self.assertProblem(resp, 409)
        self.assertEqual(self.active_admins(), [self.admin_id])
        # Reactivated, it counts again.
        self.assertJson(self.call('PATCH', '/api/v1/users/' +
                                  suspended['id'],
                                  json={'is_active': True}), 200)
        self.assertJson(self.call('PATCH', '/api/v1/users/' + self.admin_id,
                                  json={'role': 'viewer'}), 200)
        self.assertEqual(self.active_admins(), [suspended['id']])

    def test_another_admin_can_be_demoted_suspended_and_deleted(self):
        for method, body, status in (
                ('PATCH', {'role': 'member'}, 200),
                ('PATCH', {'is_active': False}, 200),
                ('DELETE', None, 204)):
            with self.subTest(method=method, body=body):
                second, _ = self.second_admin()
                resp = self.call(method, '/api/v1/users/' + second['id'],
                                 json=body)
                self.assertStatus(resp, status)
                self.assertEqual(self.active_admins(), [self.admin_id])

    def test_patch_that_keeps_an_admin_active_is_not_refused(self):
        body = self.assertJson(self.call(
            'PATCH', '/api/v1/users/' + self.admin_id,
            json={'role': 'admin', 'is_active': True,
                  'full_name': 'Still here'}), 200)
        self.assertEqual(body['full_name'], 'Still here')
        self.assertEqual(self.active_admins(), [self.admin_id])

    # -- races -------------------------------------------------------

    def race(self, first, second):
        """Sends two requests at once, (token, method, path, body) each,
        and returns their statuses in that order.

        Both are made to wait on the tenant's admin rows: a psql session
        locks them first and lets go only when both requests queue
        behind it, so each has passed its own authorisation while the
        other admin was still there."""
        marker = 'users-race-%s' % os.urandom(4).hex()
        holder_error = []

        def hold():
            try:
                self.stack.psql(
                    "BEGIN; SELECT id FROM public.users WHERE tenant_id = "
                    ":'t' AND role = 'admin' AND is_active FOR UPDATE; "
                    "SELECT pg_sleep(30), '%s'; COMMIT;" % marker,
                    t=self.tenant.id)
            except Exception as e:      # cancelled, as planned
                holder_error.append(e)

        def holder_pid():
            rows = self.stack.psql(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE :'m' "
                "AND pid <> pg_backend_pid()", m='%%SELECT pg_sleep%%%s%%'
                % marker)
            return rows[0][0] if rows else None

        def waiting():
            return int(self.stack.psql_value(
                "SELECT count(*) FROM pg_stat_activity WHERE "
                "wait_event_type = 'Lock' AND query LIKE '%public.users%'",
                superuser=True))

        results = [None, None]

        def send(i, token, method, path, body):
            results[i] = self.call(method, path, token=token, json=body)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            pid = wait_for(holder_pid, 10)
            self.assertIsNotNone(pid, 'the lock holder did not start')
            senders = [threading.Thread(target=send, args=(i,) + req)
                       for i, req in enumerate((first, second))]
            for t in senders:
                t.start()
            self.assertTrue(wait_for(lambda: waiting() == 2, 10),
                            'the requests did not queue on the lock')
        finally:
            self.stack.psql("SELECT pg_cancel_backend(pid) FROM "
                            "pg_stat_activity WHERE query LIKE :'m' AND "
                            "pid <> pg_backend_pid()",
                            m='%%SELECT pg_sleep%%%s%%' % marker)
            holder.join(30)
        for t in senders:
            t.join(30)
        return [r.status for r in results], results

    def test_two_admins_deleting_each_other_at_once_leave_one(self):
        second, second_token = self.second_admin()
        statuses, results = self.race(
            (self.tenant.token, 'DELETE', '/api/v1/users/' + second['id'],
             None),
            (second_token, 'DELETE', '/api/v1/users/' + self.admin_id,
             None))
        self.assertEqual(sorted(statuses), [204, 409], results)
        self.assertEqual(len(self.active_admins()), 1)
        loser = results[statuses.index(409)].json()
        self.assertIn('last active admin', loser['detail'])

    def test_two_admins_suspending_each_other_at_once_leave_one(self):
        second, second_token = self.second_admin()
        statuses, results = self.race(
            (self.tenant.token, 'PATCH', '/api/v1/users/' + second['id'],
             {'is_active': False}),
            (second_token, 'PATCH', '/api/v1/users/' + self.admin_id,
             {'is_active': False}))
        self.assertEqual(sorted(statuses), [200, 409], results)
        self.assertEqual(len(self.active_admins()), 1)

    def test_two_admins_demoting_each_other_at_once_leave_one(self):
        second, second_token = self.second_admin()
        statuses, results = self.race(
            (self.tenant.token, 'PATCH', '/api/v1/users/' + second['id'],
             {'role': 'viewer'}),
            (second_token, 'PATCH', '/api/v1/users/' + self.admin_id,
             {'role': 'member'}))
        self.assertEqual(sorted(statuses), [200, 409], results)
        self.assertEqual(len(self.active_admins()), 1)

    def test_two_admins_demoting_themselves_at_once_leave_one(self):
        second, second_token = self.second_admin()
        statuses, results = self.race(
            (self.tenant.token, 'PATCH', '/api/v1/users/' + self.admin_id,
             {'role': 'member'}),
            (second_token, 'PATCH', '/api/v1/users/' + second['id'],
             {'role': 'member'}))
        self.assertEqual(sorted(statuses), [200, 409], results)
        self.assertEqual(len(self.active_admins()), 1)


if __name__ == '__main__':
    crewtest.main()
