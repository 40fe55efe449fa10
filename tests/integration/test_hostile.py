"""Inputs that tried to break crewd from outside, kept as tests: each
answers a clear 4xx (never a 500), costs what it should, and leaves the
stored data and the workers as they were.

Through nginx: sizes and times past nginx's caps, hostile JSON, ids in
paths that are not canonical UUIDs, tokens that RFC 8725 says to refuse,
passwords over the byte cap, and logins rate-limited per client and per
account.  (FastCGI that nginx would never send is in test_fastcgi.py.)"""

import base64
import hashlib
import hmac
import json as jsonlib
import os
import re
import socket
import ssl
import threading
import time

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for
from stack import cpu_ticks


def agent(**changes):
    body = {'name': 'Scout', 'role': 'Researcher', 'goal': 'Find things'}
    body.update(changes)
    return body


class HostileInputTest(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.stack.new_tenant('hostile')

    def call(self, method, path, **kwargs):
        kwargs.setdefault('token', self.t.token)
        return self.stack.request(method, path, host=self.t.slug, **kwargs)

    def agent_count(self):
        schema = self.stack.tenant_schema(self.t.id)
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".agents', schema=schema))

    # -- numbers that PostgreSQL would write out in full ---------------

    def test_tiny_exponents_in_config_are_refused_not_amplified(self):
        before = self.agent_count()
        numbers = ','.join(['1e-16383'] * 6000)
        body = jsonlib.dumps(agent(config={'a': 'X'})).replace(
            '"X"', '[' + numbers + ']')

        resp = self.call('POST', '/api/v1/agents', body=body,
                         headers={'Content-Type': 'application/json'})

        problem = self.assertProblem(resp, 400)
        self.assertIn('number out of range', problem['detail'])
        self.assertLess(len(resp.body), 2000)
        self.assertEqual(self.agent_count(), before)

    def test_huge_exponents_in_config_are_refused(self):
        for number in ('1e64', '1e-16384', '1e300', '-9e99'):
            with self.subTest(number=number):
                body = '{"name":"N","role":"R","goal":"G",' \
                    '"config":{"n":%s}}' % number
                resp = self.call(
                    'POST', '/api/v1/agents', body=body,
                    headers={'Content-Type': 'application/json'})
                self.assertProblem(resp, 400)

    def test_ordinary_numbers_in_config_round_trip(self):
        config = {'temperature': 0.7, 'max_tokens': 4096,
                  'big': 12345678901234567890, 'small': 1e-9}
        resp = self.call('POST', '/api/v1/agents', json=agent(config=config))
        self.assertEqual(self.assertJson(resp, 201)['config'], config)

    # -- cursors -------------------------------------------------------

    def test_forged_cursors_are_400_before_any_sql(self):
        forged = [
            '9999-99-99T99:99:99Z,' + random_uuid(),
            '2026-02-30T00:00:00Z,' + random_uuid(),
            '0000-01-01T00:00:00Z,' + random_uuid(),
        ]
        for text in forged:
            cursor = base64.urlsafe_b64encode(
                text.encode() + b'\0' * 16).decode().rstrip('=')
            with self.subTest(text=text):
                resp = self.call('GET', '/api/v1/agents?cursor=' + cursor)
                self.assertProblem(resp, 400, fields=['cursor'])

    def test_a_cursor_from_the_server_still_pages(self):
        for i in range(3):
            self.assertJson(self.call('POST', '/api/v1/agents',
                                      json=agent(name='Page %d' % i)), 201)
        first = self.assertJson(self.call('GET', '/api/v1/agents?limit=2'),
                                200)
        self.assertIsNotNone(first['next_cursor'])
        second = self.assertJson(self.call(
            'GET', '/api/v1/agents?limit=2&cursor=' + first['next_cursor']),
            200)
        self.assertFalse({a['id'] for a in first['items']} &
                         {a['id'] for a in second['items']})

    # -- the log -------------------------------------------------------

    def test_control_characters_in_a_path_never_reach_the_log(self):
        marker = 'inject%d' % time.time_ns()
        resp = self.call('GET', '/api/v1/agents%1b%5b31m' + marker +
                         '%0d%0aFAKE%20LINE', token=None)
        self.assertProblem(resp, 404)

        lines = [line for line in self.stack.crewd_log().splitlines()
                 if marker in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f
                             for c in lines[0]), repr(lines[0]))

    # -- one-line strings ----------------------------------------------

    def test_names_with_hidden_or_reordering_characters_are_refused(self):
        before = self.agent_count()
        for name in ('a\u0085b', 'a\u009bb', 'evil\u202egnp.exe',
                     'a\u2066b', '   ', '\u00a0\u00a0', 'tab\there'):
            with self.subTest(name=repr(name)):
                resp = self.call('POST', '/api/v1/agents',
                                 json=agent(name=name))
                self.assertProblem(resp, 422, fields=['/name'])
        self.assertEqual(self.agent_count(), before)

    def test_multi_line_text_is_still_welcome_where_it_belongs(self):
        resp = self.call('POST', '/api/v1/agents', json=agent(
            goal='Line one\nLine two\n\tindented', name='Caf\u00e9 \u00fc'))
        body = self.assertJson(resp, 201)
        self.assertEqual(body['goal'], 'Line one\nLine two\n\tindented')

    # -- sign-up -------------------------------------------------------

    def test_slugs_and_emails_of_reserved_or_broken_shape_are_refused(self):
        cases = [
            ({'slug': 'ab--cd'}, '/slug'),
            ({'admin_email': 'a@b..test'}, '/admin_email'),
            ({'admin_email': '.a@b.test'}, '/admin_email'),
            ({'admin_email': 'a.@b.test'}, '/admin_email'),
        ]
        for change, field in cases:
            body = {'name': 'Odd', 'slug': 'odd-%d' % time.time_ns(),
                    'admin_email': 'admin@odd.test',
                    'admin_password': crewtest.DEFAULT_PASSWORD}
            body.update(change)
            with self.subTest(change=change):
                resp = self.stack.request('POST', '/api/v1/tenants',
                                          json=body)
                self.assertProblem(resp, 422, fields=[field])

    # -- methods -------------------------------------------------------

    def test_head_answers_like_get_without_a_body(self):
        get = self.call('GET', '/api/v1/agents')
        head = self.call('HEAD', '/api/v1/agents')
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b'')
        self.assertEqual(head.headers.get('Content-Length'),
                         str(len(get.body)))

        health = self.stack.request('HEAD', '/healthz')
        self.assertEqual(health.status, 200)
        self.assertEqual(health.body, b'')

    def test_a_wrong_method_lists_head_among_the_allowed(self):
        resp = self.call('PUT', '/api/v1/agents', json=agent())
        self.assertProblem(resp, 405)
        self.assertEqual(resp.headers.get('Allow'), 'GET, POST, HEAD')


class SuspendedBehindOurBackTest(StackTestCase):
    """A tenant changed by hand in the database, with no NOTIFY, is seen
    within the cache's lifetime (10 s)."""

    def test_a_tenant_suspended_in_psql_answers_404_within_the_ttl(self):
        t = self.stack.new_tenant('suspend')
        for _ in range(4):      # every worker caches it
            self.assertJson(self.stack.request(
                'GET', '/api/v1/agents', host=t.slug, token=t.token), 200)

        self.stack.psql("UPDATE public.tenants SET is_active = false "
                        "WHERE id = :'id'", id=t.id)
        deadline = time.monotonic() + 15
        statuses = []
        while time.monotonic() < deadline:
            resp = self.stack.request('GET', '/api/v1/agents', host=t.slug,
                                      token=t.token)
            statuses.append(resp.status)
            if statuses[-4:] == [404] * 4:
                break
            time.sleep(0.5)
        self.assertEqual(statuses[-4:], [404] * 4, statuses)


# ---------------------------------------------------------------------
# The suite below: each test names one hostile input, asserts the exact
# answer, and ends with assertUnharmed: the same crewd processes, all
# answering, and the tenant's stored data as before.
# ---------------------------------------------------------------------

class HostileTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.stack.new_tenant('hostile')
        cls.agent = cls.stack.request(
            'POST', '/api/v1/agents', host=cls.t.slug, token=cls.t.token,
            json=agent(name='Resident')).json()

    def setUp(self):
        self.before = self.snapshot(self.t)

    def call(self, method, path, **kwargs):
        kwargs.setdefault('token', self.t.token)
        return self.stack.request(method, path, host=self.t.slug, **kwargs)

    def post_raw(self, path, body, content_type='application/json'):
        return self.call('POST', path, body=body,
                         headers={'Content-Type': content_type})

    def unharmed(self):
        self.assertUnharmed(self.before, self.t)

    def never_reached_crewd(self, resp):
        """nginx answered resp itself: crewd logged no such request."""
        rid = resp.headers.get('X-Request-Id')
        self.assertTrue(rid, resp)
        self.assertNotIn('req=%s' % rid, self.stack.crewd_log())


class NginxLimitTest(HostileTestCase):

    def test_a_body_over_the_cap_answers_413_from_nginx(self):
        body = jsonlib.dumps(agent(goal='x' * (1 << 20)))
        resp = self.post_raw('/api/v1/agents', body)
        problem = self.assertProblem(resp, 413)
        self.assertIn('1 MiB', problem['detail'])
        self.never_reached_crewd(resp)
        self.unharmed()

    def test_a_header_over_8_kib_answers_431(self):
        resp = self.call('GET', '/api/v1/agents',
                         headers={'X-Big': 'a' * 9000})
        self.assertProblem(resp, 431)
        self.never_reached_crewd(resp)
        self.unharmed()

    def test_headers_over_32_kib_together_answer_431(self):
        headers = {'X-Part-%d' % i: 'b' * 7000 for i in range(6)}
        resp = self.call('GET', '/api/v1/agents', headers=headers)
        self.assertProblem(resp, 431)
        self.never_reached_crewd(resp)
        self.unharmed()

    def test_a_request_target_over_8_kib_answers_414(self):
        resp = self.call('GET', '/api/v1/agents?name=' + 'c' * 9000)
        self.assertProblem(resp, 414)
        self.never_reached_crewd(resp)
        self.unharmed()

    def slow_client(self, request_bytes, outcome):
        """Sends request_bytes over TLS and keeps the connection open;
        stores in outcome how long nginx took to close it and what it
        sent."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(('127.0.0.1', self.stack.https_port),
                                       30)
        with ctx.wrap_socket(raw, server_hostname=self.host) as tls:
            tls.sendall(request_bytes)
            started = time.monotonic()
            received = b''
            try:
                while True:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except OSError as e:
                received += ('<%s>' % e).encode()
            outcome.append((time.monotonic() - started, received))

    def test_slow_clients_are_cut_off_by_nginx_and_never_reach_crewd(self):
        self.host = self.stack.host_name(self.t.slug)
        start = 'POST /api/v1/agents HTTP/1.1\r\nHost: %s:%d\r\n' % (
            self.host, self.stack.https_port)
        slow_headers = start.encode()
        slow_body = (start + 'Authorization: Bearer %s\r\n'
                     'Content-Type: application/json\r\n'
                     'Content-Length: 200\r\n\r\n{"name": "Sl' %
                     self.t.token).encode()
        headers_outcome, body_outcome = [], []
        threads = [threading.Thread(target=self.slow_client,
                                    args=(slow_headers, headers_outcome)),
                   threading.Thread(target=self.slow_client,
                                    args=(slow_body, body_outcome))]
        offset = len(self.stack.crewd_log())
        for thread in threads:
            thread.start()

        # Meanwhile crewd serves everyone else.
        for _ in range(10):
            self.assertJson(self.call('GET', '/api/v1/agents'), 200)
        for thread in threads:
            thread.join(40)

        # client_header_timeout 10 s, client_body_timeout 15 s: nginx
        # closes without an answer.
        took, received = headers_outcome[0]
        self.assertEqual(received, b'')
        self.assertTrue(9 < took < 13, took)
        took, received = body_outcome[0]
        self.assertEqual(received, b'')
        self.assertTrue(14 < took < 18, took)
        self.assertNotIn('POST /api/v1/agents',
                         self.stack.crewd_log()[offset:])
        self.unharmed()


class HostileJsonTest(HostileTestCase):

    def assertRefusedBody(self, body, status=400, path='/api/v1/agents'):
        if isinstance(body, str):
            body = body.encode()
        resp = self.post_raw(path, body)
        return self.assertProblem(resp, status)

    def test_nesting_deeper_than_32_answers_400(self):
        def nested(depth):
            return '[' * depth + ']' * depth
        self.assertJson(self.post_raw('/api/v1/agents', jsonlib.dumps(
            agent(name='Deep')).replace('"Deep"', '"Deep", "config": '
                                        '{"a": %s}' % nested(30))), 201)
        self.before = self.snapshot(self.t)
        for depth in (33, 1000, 200000):
            with self.subTest(depth=depth):
                problem = self.assertRefusedBody(
                    '{"name": "N", "role": "R", "goal": "G", "config": '
                    '{"a": %s}}' % nested(depth))
                self.assertIn('deeper than 32', problem['detail'])
        self.assertRefusedBody('{"a":' * 50000 + '1' + '}' * 50000)
        self.unharmed()

    def test_duplicate_keys_answer_400(self):
        for body in ('{"name": "A", "name": "B", "role": "R", "goal": "G"}',
                     '{"name": "A", "role": "R", "goal": "G", '
                     '"config": {"k": 1, "k": 2}}',
                     '{"name": "A", "\\u006eame": "B", "role": "R", '
                     '"goal": "G"}',
                     '{"name": "A", "role": "R", "goal": "G", "config": '
                     '{"x": [{"k": 1, "k": 1}]}}'):
            with self.subTest(body=body):
                problem = self.assertRefusedBody(body)
                self.assertIn('duplicate', problem['detail'])
        self.unharmed()

    def test_invalid_utf8_answers_400(self):
        cases = {
            'overlong 2-byte slash': b'\xc0\xaf',
            'overlong 2-byte NUL': b'\xc0\x80',
            'overlong 3-byte': b'\xe0\x80\xaf',
            'overlong 4-byte': b'\xf0\x80\x80\xaf',
            'UTF-16 surrogate D800': b'\xed\xa0\x80',
            'UTF-16 surrogate DFFF': b'\xed\xbf\xbf',
            'bare continuation': b'\x80',
            'bare continuations': b'\xbf\xbf',
            'cut 2-byte': b'\xc3',
            'cut 3-byte': b'\xe2\x82',
            'past U+10FFFF': b'\xf4\x90\x80\x80',
            'byte F5': b'\xf5\x80\x80\x80',
            'byte FF': b'\xff',
        }
        for what, bad in cases.items():
            for where in ('value', 'key'):
                with self.subTest(what=what, where=where):
                    if where == 'value':
                        body = b'{"name": "a' + bad + b'b", "role": "R", ' \
                            b'"goal": "G"}'
                    else:
                        body = b'{"name": "N", "role": "R", "goal": "G", ' \
                            b'"config": {"k' + bad + b'": 1}}'
                    self.assertRefusedBody(body)
        self.unharmed()

    def test_escaped_lone_surrogates_and_nul_answer_400(self):
        for escape in ('\\ud800', '\\udc00', '\\ud800\\u0041',
                       '\\udbff\\udbff', '\\u0000'):
            with self.subTest(escape=escape):
                self.assertRefusedBody('{"name": "a%sb", "role": "R", '
                                       '"goal": "G"}' % escape)
        self.unharmed()

    def test_numbers_out_of_range_for_the_field_answer_4xx(self):
        provider = '{"name": "P", "provider_type": "openai", "priority": %s}'
        cases = [
            ('0', 422), ('1001', 422), ('-1', 422),
            ('9223372036854775807', 422), ('9223372036854775808', 422),
            ('18446744073709551616', 422), ('-9223372036854775809', 422),
            ('1.5', 422), ('1.0', 422), ('1e2', 422), ('-0', 422),
            ('1e400', 400), ('-1e400', 400), ('1e-400', 400),
            ('1' * 400, 400),
        ]
        for number, status in cases:
            with self.subTest(number=number[:30]):
                problem = self.assertRefusedBody(provider % number, status,
                                                 '/api/v1/llm-providers')
                if status == 422:
                    self.assertEqual(problem['errors'][0]['field'],
                                     '/priority')
        for limit in ('0', '101', '-1', '1e2', '10.0', '99999999999999999999',
                      '%2010', ''):
            with self.subTest(limit=limit):
                resp = self.call('GET', '/api/v1/agents?limit=' + limit)
                self.assertProblem(resp, 400, fields=['limit'])
        self.unharmed()

    def test_wrong_types_answer_422_naming_the_field(self):
        for field, value in (('name', 5), ('name', ['x']), ('name', {}),
                             ('name', True), ('role', None),
                             ('goal', 1.5), ('config', 'x'),
                             ('config', [1]), ('allow_delegation', 'true'),
                             ('llm_provider_id', 7), ('verbose', 0)):
            with self.subTest(field=field, value=value):
                resp = self.call('POST', '/api/v1/agents',
                                 json=agent(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        for body, status in (('[]', 422), ('"agent"', 422), ('5', 422),
                             ('null', 422), ('', 400), ('{', 400),
                             ('{} {}', 400), ('{"name": "A",}', 400)):
            with self.subTest(body=body):
                self.assertRefusedBody(body, status)
        resp = self.post_raw('/api/v1/agents', jsonlib.dumps(agent()),
                             content_type='text/plain')
        self.assertProblem(resp, 415)
        self.unharmed()


class UuidInPathTest(HostileTestCase):

    def path(self, id_text):
        return '/api/v1/agents/' + id_text

    def test_upper_case_ids_are_canonicalised_before_the_lookup(self):
        upper = self.agent['id'].upper()
        body = self.assertJson(self.call('GET', self.path(upper)), 200)
        self.assertEqual(body['id'], self.agent['id'])
        mixed = self.agent['id'][:9] + self.agent['id'][9:].upper()
        resp = self.call('PATCH', self.path(mixed), json={'goal': 'Still'})
        self.assertEqual(self.assertJson(resp, 200)['id'], self.agent['id'])
        self.assertEqual(self.stack.psql_value(
            "SELECT goal FROM :\"schema\".agents WHERE id = :'id'",
            superuser=True, schema=self.stack.tenant_schema(self.t.id),
            id=self.agent['id']), 'Still')

    def test_non_canonical_forms_answer_the_unknown_id_404(self):
        canonical = self.agent['id']
        bare = canonical.replace('-', '')
        self.assertProblem(self.call('GET', self.path(random_uuid())), 404)
        forms = [
            '{%s}' % canonical, '%7B' + canonical + '%7D', bare,
            bare.upper(), 'urn:uuid:' + canonical, 'urn%3Auuid%3A' +
            canonical, canonical + 'x', canonical + '0', canonical[:-1],
            canonical + '%20', '%20' + canonical, canonical + '%00',
            canonical + '%0a', canonical + ';', canonical + '.json',
            canonical.replace('-', '_'), canonical[:8] + canonical[9:13] +
            '-' + canonical[13:], 'g' + canonical[1:],
            "x'%20OR%20'1'='1",
        ]
        for form in forms:
            with self.subTest(form=form):
                resp = self.call('GET', self.path(form))
                if resp.status == 400:
                    # nginx itself refuses %00 in a path.
                    self.assertIn('%00', form)
                    continue
                self.assertProblem(resp, 404)
        self.unharmed()

    def test_non_canonical_ids_in_bodies_are_canonicalised_or_422(self):
        provider = self.assertJson(self.call(
            'POST', '/api/v1/llm-providers',
            json={'name': 'P', 'provider_type': 'openai'}), 201)
        resp = self.call('PATCH', self.path(self.agent['id']),
                         json={'llm_provider_id': provider['id'].upper()})
        self.assertEqual(self.assertJson(resp, 200)['llm_provider_id'],
                         provider['id'])
        self.before = self.snapshot(self.t)
        for form in ('{%s}' % provider['id'], 'urn:uuid:' + provider['id'],
                     provider['id'].replace('-', ''), provider['id'] + ' '):
            with self.subTest(form=form):
                resp = self.call('PATCH', self.path(self.agent['id']),
                                 json={'llm_provider_id': form})
                self.assertProblem(resp, 422, fields=['/llm_provider_id'])
        self.unharmed()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


class TokenTest(HostileTestCase):
    """Tokens signed with the real secret where that matters, so each is
    refused for the one thing wrong with it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(cls.stack.conf['token_secret_file']) as f:
            cls.secret = bytes.fromhex(f.read().strip())
        payload = cls.t.token.split('.')[1]
        cls.claims = jsonlib.loads(base64.urlsafe_b64decode(
            payload + '=' * (-len(payload) % 4)))
        cls.other = cls.stack.new_tenant('other')

    def token(self, header=None, digest=hashlib.sha256, **changes):
        """A token of self.claims with changes (None drops a claim),
        signed with the secret (digest None: not signed)."""
        now = int(time.time())
        claims = dict(self.claims, iat=now, exp=now + 600)
        for key, value in changes.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        head = b64url(jsonlib.dumps(header or {'alg': 'HS256',
                                               'typ': 'JWT'}).encode())
        body = b64url(jsonlib.dumps(claims).encode())
        signed = head + '.' + body
        mac = hmac.new(self.secret, signed.encode(), digest).digest() \
            if digest else b''
        return signed + '.' + b64url(mac)

    def assertRefused(self, token, what):
        with self.subTest(what=what):
            resp = self.call('GET', '/api/v1/agents', token=token)
            self.assertProblem(resp, 401)
            self.assertIn('Bearer', resp.headers.get('WWW-Authenticate', ''))

    def test_a_token_forged_with_the_secret_and_good_claims_is_accepted(self):
        # The control: the tokens refused below differ from it only in
        # what their names say.
        self.assertJson(self.call('GET', '/api/v1/agents',
                                  token=self.token()), 200)

    def test_other_algorithms_are_refused(self):
        for alg, digest in (('none', None), ('None', None), ('NONE', None),
                            ('HS384', hashlib.sha384),
                            ('HS512', hashlib.sha512),
                            ('hs256', hashlib.sha256),
                            ('HS256 ', hashlib.sha256)):
            self.assertRefused(self.token({'alg': alg, 'typ': 'JWT'},
                                          digest), 'alg %r' % alg)
        good = self.token()
        self.assertRefused(self.token({'alg': 'none'}, None),
                           'none, unsigned')
        head = b64url(b'{"alg":"none","typ":"JWT"}')
        self.assertRefused(head + '.' + good.split('.')[1] + '.',
                           'none, empty signature')
        for alg, size in (('RS256', 256), ('ES256', 64), ('PS256', 256),
                          ('EdDSA', 64)):
            token = self.token({'alg': alg, 'typ': 'JWT'}, None)
            self.assertRefused(token + b64url(os.urandom(size)),
                               'alg %s' % alg)
        self.assertRefused(self.token({'typ': 'JWT'}), 'no alg')
        self.assertRefused(self.token({'alg': 'HS256', 'crit': ['exp']}),
                           'crit')
        self.unharmed()

    def test_bad_exp_and_nbf_are_refused(self):
        now = int(time.time())
        for what, changes in (
                ('exp missing', {'exp': None}),
                ('exp a string', {'exp': str(now + 600)}),
                ('exp a float', {'exp': now + 600.5}),
                ('exp a whole float', {'exp': float(now + 600)}),
                ('exp true', {'exp': True}),
                ('exp an array', {'exp': [now + 600]}),
                ('exp past', {'exp': now - 5}),
                ('exp far in the future', {'exp': now + 10 * 365 * 86400}),
                ('exp past the lifetime', {'exp': now + 3600 + 300}),
                ('exp 2**63', {'exp': 2 ** 63}),
                ('exp 2**64', {'exp': 2 ** 64}),
                ('exp negative', {'exp': -1}),
                ('iat missing', {'iat': None}),
                ('iat in the future', {'iat': now + 3600}),
                ('nbf in the future', {'nbf': now + 3600}),
                ('nbf a string', {'nbf': str(now)})):
            self.assertRefused(self.token(**changes), what)
        self.unharmed()

    def test_wrong_audience_or_issuer_is_refused(self):
        for what, changes in (
                ('another tenant as aud', {'aud': self.other.id}),
                ('aud an array', {'aud': [self.t.id]}),
                ('aud upper case', {'aud': self.t.id.upper()}),
                ('aud missing', {'aud': None}),
                ('another issuer', {'iss': 'someone-else'}),
                ('issuer missing', {'iss': None}),
                ('issuer with a NUL', {'iss': 'crewd\0'}),
                ('sub not a uuid', {'sub': 'admin'}),
                ('role unknown', {'role': 'root'})):
            self.assertRefused(self.token(**changes), what)
        # A real token of the other tenant, on this tenant's host.
        self.assertRefused(self.other.token, "another tenant's token")
        self.unharmed()

    def test_bad_signatures_of_every_shape_are_refused(self):
        good = self.token()
        head, body, sig = good.split('.')
        signed = head + '.' + body
        mac = base64.urlsafe_b64decode(sig + '=')
        flipped = bytes([mac[0] ^ 1]) + mac[1:]
        last_flipped = mac[:-1] + bytes([mac[-1] ^ 0x80])
        std = base64.b64encode(mac).decode()
        for what, token in (
                ('empty', signed + '.'),
                ('truncated', signed + '.' + sig[:-1]),
                ('a byte short', signed + '.' + b64url(mac[:-1])),
                ('one bit flipped', signed + '.' + b64url(flipped)),
                ('last bit flipped', signed + '.' + b64url(last_flipped)),
                ('one character more', signed + '.' + sig + 'A'),
                ('twice as long', signed + '.' + b64url(mac + mac)),
                ('padded', signed + '.' + sig + '='),
                ('standard base64', signed + '.' + std),
                ('a plus sign', signed + '.' + sig[:-1] + '+'),
                ('a slash', signed + '.' + sig[:-1] + '/'),
                ('a space inside', signed + '.' + sig[:20] + ' ' + sig[20:]),
                ('non-canonical last character', signed + '.' + sig[:-1] +
                 chr(ord(sig[-1]) + 1)),
                ('signed with another key', signed + '.' + b64url(hmac.new(
                    os.urandom(64), signed.encode(), hashlib.sha256)
                    .digest())),
                ('the payload changed after signing',
                 head + '.' + b64url(body.encode()[:-2] + b'fQ') + '.' +
                 sig)):
            self.assertRefused(token, what)
        self.unharmed()

    def test_other_shapes_are_refused(self):
        good = self.token()
        head, body, sig = good.split('.')
        for what, token in (
                ('four segments', good + '.' + sig),
                ('five segments (JWE)', good + '.' + sig + '.' + sig),
                ('two segments', head + '.' + body),
                ('one segment', head),
                ('an empty header', '.' + body + '.' + sig),
                ('an empty payload', head + '..' + sig),
                ('a trailing dot', good + '.'),
                ('4 KiB and more', good + 'A' * 4096),
                ('not base64 at all', 'not a token at all')):
            self.assertRefused(token, what)
        for value in ('Bearer', 'Bearer ', 'Token ' + good,
                      'Bearer ' + good + ' ' + good, 'Basic ' + good):
            with self.subTest(authorization=value[:30]):
                resp = self.stack.request('GET', '/api/v1/agents',
                                          host=self.t.slug,
                                          headers={'Authorization': value})
                self.assertProblem(resp, 401)
        self.unharmed()


# The Argon2id cost of PasswordCostTest's stack: a hash takes tens of
# clock ticks of CPU, where a refusal before hashing takes none.
EXPENSIVE_HASH = {'password_ops_limit': 3, 'password_mem_limit': 64 << 20}
HASH_TICKS = 5


class PasswordCostTestCase(HostileTestCase):
    stack_options = dict(EXPENSIVE_HASH, login_max_failures=3,
                         login_failure_window=4)

    def workers_cpu(self):
        return sum(cpu_ticks(pid) for pid in self.stack.crewd_pids()[1])

    def cpu_of(self, call):
        """Calls call() and returns its result and the CPU ticks the
        workers spent meanwhile."""
        before = self.workers_cpu()
        result = call()
        return result, self.workers_cpu() - before

    def login(self, password, email=None, tenant=None):
        tenant = tenant or self.t
        return self.stack.request('POST', '/api/v1/auth/login',
                                  host=tenant.slug, json={
                                      'email': email or tenant.email,
                                      'password': password})

    def throttle_rows(self, tenant=None):
        return self.stack.psql(
            "SELECT email, failures, locked_until IS NOT NULL"
            " FROM public.login_throttle WHERE tenant_id = :'id'"
            " ORDER BY email", superuser=True, id=(tenant or self.t).id)

    def clear_throttle(self):
        self.stack.psql("DELETE FROM public.login_throttle", superuser=True)


class PasswordCapTest(PasswordCostTestCase):

    def setUp(self):
        super().setUp()
        self.clear_throttle()

    def test_a_hash_costs_cpu_here(self):
        resp, ticks = self.cpu_of(lambda: self.login('wrong password'))
        self.assertProblem(resp, 401)
        self.assertGreaterEqual(ticks, HASH_TICKS)

    def test_passwords_over_the_cap_answer_400_before_any_hashing(self):
        long_password = 'p' * 257
        calls = [
            ('login', lambda: self.login(long_password)),
            ('sign-up', lambda: self.stack.signup(
                'cap-%s' % os.urandom(3).hex(), password=long_password)),
            ('user create', lambda: self.stack.request(
                'POST', '/api/v1/users', host=self.t.slug, token=self.t.token,
                json={'email': 'new@cap.test', 'password': long_password,
                      'role': 'viewer'})),
            ('password change', lambda: self.stack.request(
                'PATCH', '/api/v1/users/' + self.user_id(), host=self.t.slug,
                token=self.t.token, json={'password': long_password})),
        ]
        for what, call in calls:
            with self.subTest(what):
                resp, ticks = self.cpu_of(call)
                problem = self.assertProblem(resp, 400)
                self.assertIn('longer than 256 bytes', problem['detail'])
                self.assertLess(ticks, HASH_TICKS)
        self.assertEqual(self.throttle_rows(), [])
        self.unharmed()

    def test_a_password_of_256_bytes_in_many_characters_is_at_the_cap(self):
        # 128 two-byte characters: 256 bytes, hashed; one more is over.
        resp = self.login('\u00e9' * 128)
        self.assertProblem(resp, 401)
        resp, ticks = self.cpu_of(lambda: self.login('\u00e9' * 128 + 'x'))
        self.assertProblem(resp, 400)
        self.assertLess(ticks, HASH_TICKS)

    def user_id(self):
        return self.stack.request('GET', '/api/v1/users/me',
                                  host=self.t.slug,
                                  token=self.t.token).json()['id']


class LoginThrottleTest(PasswordCostTestCase):
    """login_max_failures 3 within login_failure_window 4 s."""

    def setUp(self):
        super().setUp()
        self.clear_throttle()

    def fail(self, times, **kwargs):
        for _ in range(times):
            self.assertProblem(self.login('wrong password', **kwargs), 401)

    def assertLocked(self, resp):
        problem = self.assertProblem(resp, 429)
        self.assertIn('too many failed logins', problem['detail'])
        retry = resp.headers.get('Retry-After')
        self.assertTrue(retry and retry.isdigit(), resp.headers)
        self.assertTrue(1 <= int(retry) <= 4, retry)
        return problem

    def test_the_failure_that_reaches_the_limit_locks_the_account(self):
        self.fail(3)
        self.assertEqual(self.throttle_rows(), [(self.t.email, '3', 't')])
        resp, ticks = self.cpu_of(lambda: self.login(self.t.password))
        self.assertLocked(resp)
        # The right password was not even looked at.
        self.assertLess(ticks, HASH_TICKS)
        self.assertEqual(self.throttle_rows(), [(self.t.email, '3', 't')])

    def test_unknown_emails_are_locked_alike(self):
        known, unknown = [], []
        for answers, email in ((known, self.t.email),
                               (unknown, 'nobody@%s.test' % self.t.slug)):
            for _ in range(4):
                resp = self.login('wrong password', email=email)
                body = resp.json()
                body.pop('request_id', None)
                answers.append((resp.status, body,
                                resp.headers.get('Retry-After') is not None))
        self.assertEqual(known, unknown)
        self.assertEqual([status for status, _, _ in known],
                         [401, 401, 401, 429])

    def test_the_email_is_normalised_for_the_count(self):
        self.fail(1, email=self.t.email.upper())
        self.fail(1, email=self.t.email.capitalize())
        self.fail(1)
        self.assertLocked(self.login(self.t.password,
                                     email=self.t.email.upper()))

    def test_a_success_clears_the_failures(self):
        self.fail(2)
        self.assertJson(self.login(self.t.password), 200)
        self.assertEqual(self.throttle_rows(), [])
        self.fail(2)
        self.assertJson(self.login(self.t.password), 200)

    def test_the_lock_ends_with_the_window(self):
        self.fail(3)
        self.assertLocked(self.login(self.t.password))
        self.assertTrue(wait_for(lambda: self.login(self.t.password)
                                 .status == 200, 8, 0.5))
        self.assertEqual(self.throttle_rows(), [])

    def test_a_lock_holds_one_email_of_one_tenant(self):
        other = self.stack.new_tenant('throttle')
        self.fail(3)
        self.assertLocked(self.login(self.t.password))
        self.assertJson(self.login(other.password, email=other.email,
                                   tenant=other), 200)
        self.fail(1, email=self.t.email, tenant=other)
        self.assertEqual(self.throttle_rows(other),
                         [(self.t.email, '1', 'f')])

    def test_expired_rows_are_removed_by_later_failures(self):
        self.fail(1, email='old@%s.test' % self.t.slug)
        self.assertEqual(len(self.throttle_rows()), 1)
        time.sleep(4.5)
        self.fail(1)
        self.assertEqual(self.throttle_rows(), [(self.t.email, '1', 'f')])


class ClientRateLimitTest(HostileTestCase):
    """nginx's login limit per client address: 3 at once, then one a
    second."""
    stack_options = {'login_rate': '60r/m', 'login_burst': 3}

    def test_logins_past_the_burst_answer_429_from_nginx(self):
        time.sleep(4)   # the sign-up's login has leaked out of the bucket
        statuses = []
        for _ in range(6):
            resp = self.stack.request(
                'POST', '/api/v1/auth/login', host=self.t.slug,
                json={'email': self.t.email, 'password': 'wrong password'})
            statuses.append(resp.status)
            if resp.status == 429:
                problem = self.assertProblem(resp, 429)
                self.assertIn('from this address', problem['detail'])
                self.assertEqual(resp.headers.get('Retry-After'), '60')
                self.never_reached_crewd(resp)
        self.assertEqual(statuses[:4], [401] * 4, statuses)
        self.assertIn(429, statuses[4:])
        self.unharmed()


if __name__ == '__main__':
    crewtest.main()
