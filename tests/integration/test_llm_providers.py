"""LLM providers: the resource, its per-type config rules, credentials
sealed under the master key and never shown, the roles, another
tenant's ids, and the master key's life: the canary, a wrong key, and a
rotation while crewd serves.

Every secret this module sends holds MARK; at the end no response body
or header the module received, and no line of crewd's logs (at level
debug), may hold it."""

import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import subprocess
import threading
import time

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for

PROVIDER_KEYS = {'id', 'tenant_id', 'name', 'provider_type', 'config',
                 'priority', 'is_active', 'has_credentials', 'created_at',
                 'updated_at'}
TYPES = ['openai', 'anthropic', 'azure_openai', 'google', 'mistral',
         'ollama', 'openai_compatible']
COLLECTION = '/api/v1/llm-providers'

MARK = 'zq%s' % os.urandom(6).hex()
_secret_count = [0]

# Every response of the module, and every stack it started.
RECEIVED = []
STACKS = []

LOOP_MAX_REQUESTS = 5000
LOOP_MAX_SECONDS = 120


def secret():
    """A fresh plain secret that holds MARK."""
    _secret_count[0] += 1
    return 'sk-%s-%d' % (MARK, _secret_count[0])


def provider_body(**changes):
    body = {'name': 'primary', 'provider_type': 'openai'}
    body.update(changes)
    return body


# ---------------------------------------------------------------------
# The sealed format, checked from outside with libsodium itself.
# ---------------------------------------------------------------------

_sodium = ctypes.CDLL(ctypes.util.find_library('sodium') or
                      'libsodium.so.23')
_sodium.sodium_init()
_decrypt = _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt
_decrypt.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_ulonglong),
                     ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong,
                     ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p,
                     ctypes.c_char_p]
_decrypt.restype = ctypes.c_int


def read_key(path):
    with open(path) as f:
        return bytes.fromhex(f.read().strip())


def key_id(key):
    """The documented key id: BLAKE2b-256 MAC of a label, first 4 bytes."""
    return hashlib.blake2b(b'crewd.master_key_id.v1', key=key,
                           digest_size=32).digest()[:4].hex()


def provider_context(tenant_id, provider_id):
    return ('crewd.llm_provider.v1|%s|%s' % (tenant_id, provider_id)).encode()


def unseal(key, sealed, context):
    """The plaintext of a sealed value, or None when it does not open."""
    header, nonce, cipher = sealed[:5], sealed[5:29], sealed[29:]
    if len(cipher) < 16:
        return None
    ad = header + context
    out = ctypes.create_string_buffer(len(cipher))
    out_len = ctypes.c_ulonglong()
    rc = _decrypt(out, ctypes.byref(out_len), None, cipher, len(cipher), ad,
                  len(ad), nonce, key)
    return out.raw[:out_len.value] if rc == 0 else None


# ---------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------

def add_user(stack, tenant, role):
    """A user of tenant with role, the same password as its admin; returns
    a token.  Made in the database: the users endpoints are not this
    module's."""
    email = '%s-%s@%s.test' % (role, os.urandom(3).hex(), tenant.slug)
    stack.psql(
        "INSERT INTO public.users (tenant_id, email, password_hash, role)"
        " SELECT tenant_id, :'email', password_hash, :'role'"
        " FROM public.users WHERE tenant_id = :'tenant' AND role = 'admin'"
        " LIMIT 1", email=email, role=role, tenant=tenant.id)
    return stack.login(tenant.slug, email=email)


def stored_sealed(stack, schema, provider_id):
    """The provider's encrypted_credentials as bytes, or None."""
    value = stack.psql_value(
        "SELECT encode(encrypted_credentials, 'hex')"
        " FROM :\"schema\".llm_providers WHERE id = :'id'",
        schema=schema, id=provider_id)
    return None if value is None else bytes.fromhex(value)


def all_sealed(stack):
    """(tenant id, provider id, sealed bytes) of every tenant."""
    out = []
    for tenant_id, schema in stack.psql(
            'SELECT id, db_schema FROM public.tenants'):
        for pid, hexed in stack.psql(
                "SELECT id, encode(encrypted_credentials, 'hex')"
                ' FROM :"schema".llm_providers'
                ' WHERE encrypted_credentials IS NOT NULL', schema=schema):
            out.append((tenant_id, pid, bytes.fromhex(hexed)))
    return out


def canary_key_id(stack):
    return stack.psql_value(
        "SELECT encode(substring(sealed from 2 for 4), 'hex')"
        ' FROM public.master_key_canary')


def process_wait_channel(pid):
    """Where a process sleeps in the kernel, for a failure message."""
    try:
        with open('/proc/%d/wchan' % pid) as f:
            return f.read() or 'running'
    except OSError as e:
        return str(e)


def write_conf(path, conf):
    with open(path, 'w') as f:
        for key, value in conf.items():
            f.write('%s = "%s"\n' % (key, value))


def parse_totals(text):
    """The key=value pairs of crewctl keys' "total:" line."""
    line = [x for x in text.splitlines() if x.startswith('total:')]
    if len(line) != 1:
        raise AssertionError('no total line in %r' % text)
    return {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', line[0])}


class ProviderTestCase(StackTestCase):
    """A tenant with an admin, a member and a viewer, and another
    tenant.  Every response goes through call() and is kept."""

    stack_options = {'log_level': 'debug',
                     'provider_http_hosts':
                         'localhost, 127.0.0.1, Ollama.Internal'}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.stack not in STACKS:
            STACKS.append(cls.stack)
        cls.tenant = cls.stack.new_tenant('prov')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.other = cls.stack.new_tenant('other')
        cls.other_schema = cls.stack.tenant_schema(cls.other.id)
        cls.member = add_user(cls.stack, cls.tenant, 'member')
        cls.viewer = add_user(cls.stack, cls.tenant, 'viewer')

    def call(self, method, path, token=None, tenant=None, **kwargs):
        tenant = tenant or self.tenant
        resp = self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token is None else token, **kwargs)
        RECEIVED.append(resp)
        return resp

    def create(self, tenant=None, **changes):
        resp = self.call('POST', COLLECTION, tenant=tenant,
                         json=provider_body(**changes))
        return self.assertJson(resp, 201), resp

    def count(self, schema=None):
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".llm_providers',
            schema=schema or self.schema))

    def stored(self, provider_id, columns, schema=None):
        return self.stack.psql(
            'SELECT %s FROM :"schema".llm_providers WHERE id = :\'id\'' %
            columns, schema=schema or self.schema, id=provider_id)

    def master_key(self):
        return read_key(self.stack.conf['master_key_file'])


# ---------------------------------------------------------------------
# Create.
# ---------------------------------------------------------------------

class ProviderCreateTest(ProviderTestCase):

    def test_create_answers_201_with_location_etag_and_defaults(self):
        body, resp = self.create(name='main')
        self.assertEqual(set(body), PROVIDER_KEYS, body)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['name'], 'main')
        self.assertEqual(body['provider_type'], 'openai')
        self.assertEqual(body['config'], {})
        self.assertEqual(body['priority'], 1)
        self.assertIs(body['is_active'], True)
        self.assertIs(body['has_credentials'], False)
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         COLLECTION + '/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_create_stores_every_field_in_the_tenants_schema(self):
        body, _ = self.create(
            name='azure', provider_type='azure_openai', priority=7,
            is_active=False,
            config={'endpoint': 'https://acme.openai.azure.com/',
                    'deployment': 'gpt4o', 'api_version': '2024-06-01',
                    'temperature': 0.2})
        rows = self.stored(body['id'], 'tenant_id, name, provider_type, '
                           'priority, is_active, config::text, '
                           'encrypted_credentials IS NULL')
        self.assertEqual(rows, [(
            self.tenant.id, 'azure', 'azure_openai', '7', 'f',
            '{"endpoint": "https://acme.openai.azure.com/", "deployment": '
            '"gpt4o", "api_version": "2024-06-01", "temperature": 0.2}',
            't')])
        self.assertEqual(body['priority'], 7)
        self.assertIs(body['is_active'], False)
        self.assertEqual(body['config']['deployment'], 'gpt4o')

    def test_create_with_credentials_stores_them_sealed(self):
        plain = {'api_key': secret(), 'organization': 'org-1'}
        body, resp = self.create(credentials=plain)
        self.assertIs(body['has_credentials'], True)
        self.assertEqual(set(body), PROVIDER_KEYS)
        self.assertNotIn(MARK, resp.text)

        sealed = stored_sealed(self.stack, self.schema, body['id'])
        key = self.master_key()
        self.assertEqual(sealed[0], 1)
        self.assertEqual(sealed[1:5].hex(), key_id(key))
        self.assertNotIn(MARK.encode(), sealed)
        opened = unseal(key, sealed,
                        provider_context(self.tenant.id, body['id']))
        self.assertIsNotNone(opened)
        self.assertEqual(json.loads(opened), plain)
        self.assertEqual(len(sealed), 1 + 4 + 24 + len(opened) + 16)

    def test_create_with_null_credentials_has_none(self):
        body, _ = self.create(credentials=None)
        self.assertIs(body['has_credentials'], False)
        self.assertEqual(self.stored(body['id'],
                                     'encrypted_credentials IS NULL'),
                         [('t',)])

    def test_create_accepts_every_provider_type(self):
        configs = {'azure_openai': {'endpoint': 'https://a.example',
                                    'deployment': 'd'},
                   'openai_compatible': {'base_url': 'https://llm.example'}}
        for t in TYPES:
            with self.subTest(provider_type=t):
                body, _ = self.create(provider_type=t,
                                      config=configs.get(t, {}))
                self.assertEqual(body['provider_type'], t)

    def test_create_without_required_fields_answers_422_naming_each(self):
        resp = self.call('POST', COLLECTION, json={})
        self.assertProblem(resp, 422, fields=['/name', '/provider_type'])
        resp = self.call('POST', COLLECTION, json={'priority': 3})
        self.assertProblem(resp, 422, fields=['/name', '/provider_type'])

    def test_create_with_wrong_types_answers_422_and_stores_nothing(self):
        cases = [
            ('name', 5), ('name', None), ('name', ''), ('name', 'x' * 256),
            ('name', 'a\nb'),
            ('provider_type', 'gpt'), ('provider_type', None),
            ('provider_type', 5), ('provider_type', 'OpenAI'),
            ('config', []), ('config', 'x'), ('config', None),
            ('priority', 0), ('priority', 1001), ('priority', -1),
            ('priority', '1'), ('priority', 1.5), ('priority', None),
            ('priority', True),
            ('is_active', 'yes'), ('is_active', None), ('is_active', 1),
            ('credentials', 'sk-plain'), ('credentials', []),
            ('credentials', 5), ('credentials', {}),
            ('credentials', {'bad name': 'x'}),
            ('credentials', {'x' * 65: 'x'}),
            ('credentials', {'api_key': 'x' * 17000}),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                resp = self.call('POST', COLLECTION,
                                 json=provider_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_credentials_members_must_be_non_empty_strings(self):
        for value in (5, None, '', ['x'], {'k': 'v'}, True):
            with self.subTest(value=value):
                resp = self.call('POST', COLLECTION, json=provider_body(
                    credentials={'api_key': value, 'org': 'o'}))
                self.assertProblem(resp, 422,
                                   fields=['/credentials/api_key'])

    def test_create_with_an_unknown_field_answers_422(self):
        resp = self.call('POST', COLLECTION,
                         json=provider_body(temperature=0.5))
        self.assertProblem(resp, 422, fields=['/temperature'])

    def test_create_with_server_owned_fields_answers_422(self):
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.other.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z'),
                             ('has_credentials', True),
                             ('encrypted_credentials', '\\x00')):
            with self.subTest(field=field):
                resp = self.call('POST', COLLECTION,
                                 json=provider_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_mass_assignment_of_role_or_tenant_id_answers_422(self):
        before = self.count()
        resp = self.call('POST', COLLECTION, json=provider_body(
            role='admin', tenant_id=self.other.id))
        self.assertProblem(resp, 422, fields=['/role', '/tenant_id'])
        self.assertEqual(self.count(), before)

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', COLLECTION, body='{"name": "x",',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def test_create_with_another_media_type_answers_415(self):
        resp = self.call('POST', COLLECTION,
                         body=json.dumps(provider_body()),
                         headers={'Content-Type': 'text/plain'})
        self.assertProblem(resp, 415)


# ---------------------------------------------------------------------
# config, per provider type.
# ---------------------------------------------------------------------

class ProviderConfigTest(ProviderTestCase):

    def check(self, provider_type, config, fields):
        """Creating with config answers 201 (fields None) or a 422 that
        names exactly fields."""
        resp = self.call('POST', COLLECTION, json=provider_body(
            provider_type=provider_type, config=config))
        if fields is None:
            body = self.assertJson(resp, 201)
            self.assertEqual(body['config'], config)
        else:
            self.assertProblem(resp, 422, fields=fields)

    def test_base_url_must_be_https_for_hosted_types(self):
        for t in ('openai', 'anthropic', 'google', 'mistral'):
            with self.subTest(provider_type=t):
                self.check(t, {'base_url': 'https://api.example.com/v1'},
                           None)
                self.check(t, {'base_url': 'HTTPS://api.example.com'}, None)
                self.check(t, {'base_url': 'https://api.example.com:8443/'
                                           'v1?version=2'}, None)
                self.check(t, {'base_url': 'http://api.example.com'},
                           ['/config/base_url'])
                self.check(t, {'base_url': 'http://localhost:8000'},
                           ['/config/base_url'])
                self.check(t, {}, None)

    def test_malformed_urls_answer_422(self):
        bad = ['', 'api.example.com', 'ftp://api.example.com',
               'https://', 'https:///v1', 'https://api example.com',
               'https://api.example.com:0', 'https://api.example.com:65536',
               'https://api.example.com:x', 'https://api.example.com:',
               'https://.example.com', 'https://a..b', 'https://[::1',
               'https://[]/', 'https://bücher.example',
               'https://api.example.com/#frag', 'javascript:alert(1)',
               'https://a.example/' + 'x' * 2100, 5, None, ['https://a.b'],
               {'url': 'https://a.b'}]
        for url in bad:
            with self.subTest(url=url):
                self.check('openai', {'base_url': url}, ['/config/base_url'])

    def test_urls_with_user_information_answer_422(self):
        for url in ('https://user:pw@api.example.com',
                    'https://user@api.example.com/v1',
                    'http://u:p@localhost:11434'):
            with self.subTest(url=url):
                resp = self.call('POST', COLLECTION, json=provider_body(
                    provider_type='ollama', config={'base_url': url}))
                body = self.assertProblem(resp, 422,
                                          fields=['/config/base_url'])
                self.assertIn('credentials', body['errors'][0]['message'])

    def test_ollama_allows_http_only_to_listed_hosts(self):
        for url in ('http://localhost:11434', 'http://127.0.0.1:11434/',
                    'http://ollama.internal', 'http://OLLAMA.internal:80/x',
                    'https://ollama.example.com'):
            with self.subTest(url=url):
                self.check('ollama', {'base_url': url}, None)
        for url in ('http://ollama.example.com', 'http://10.0.0.7:11434',
                    'http://[::1]:11434', 'http://localhost.example.com',
                    'http://127.0.0.2'):
            with self.subTest(url=url):
                self.check('ollama', {'base_url': url}, ['/config/base_url'])
        self.check('ollama', {}, None)

    def test_openai_compatible_requires_a_base_url(self):
        self.check('openai_compatible', {}, ['/config/base_url'])
        self.check('openai_compatible', {'model': 'llama3'},
                   ['/config/base_url'])
        self.check('openai_compatible', {'base_url': 'http://localhost:8000'
                                                     '/v1'}, None)
        self.check('openai_compatible', {'base_url': 'https://llm.example'},
                   None)
        self.check('openai_compatible', {'base_url': 'http://llm.example'},
                   ['/config/base_url'])

    def test_azure_openai_requires_an_https_endpoint_and_a_deployment(self):
        self.check('azure_openai', {},
                   ['/config/endpoint', '/config/deployment'])
        self.check('azure_openai', {'endpoint': 'https://a.example'},
                   ['/config/deployment'])
        self.check('azure_openai', {'deployment': 'd'}, ['/config/endpoint'])
        self.check('azure_openai', {'endpoint': 'http://localhost',
                                    'deployment': 'd'}, ['/config/endpoint'])
        self.check('azure_openai', {'endpoint': 'https://a.example',
                                    'deployment': ''},
                   ['/config/deployment'])
        self.check('azure_openai', {'endpoint': 'https://a.example',
                                    'deployment': 'd',
                                    'api_version': '2024-06-01'}, None)

    def test_the_url_key_of_another_type_answers_422(self):
        self.check('openai', {'endpoint': 'https://a.example'},
                   ['/config/endpoint'])
        self.check('azure_openai', {'endpoint': 'https://a.example',
                                    'deployment': 'd',
                                    'base_url': 'https://a.example'},
                   ['/config/base_url'])

    def test_known_string_members_are_checked(self):
        for member in ('model', 'deployment', 'api_version', 'organization',
                       'project_id', 'location'):
            for value in (5, '', None, 'x' * 256, ['a']):
                with self.subTest(member=member, value=value):
                    self.check('google', {member: value},
                               ['/config/' + member])
        self.check('google', {'model': 'gemini-1.5-pro', 'location': 'eu',
                              'project_id': 'p-1'}, None)

    def test_secrets_in_config_answer_422_in_any_case(self):
        for name in ('api_key', 'API_KEY', 'Password', 'token',
                     'client_secret', 'private_key', 'credentials'):
            with self.subTest(name=name):
                resp = self.call('POST', COLLECTION, json=provider_body(
                    config={name: secret()}))
                self.assertProblem(resp, 422, fields=['/config/' + name])
                self.assertNotIn(MARK, resp.text)

    def test_secrets_hidden_in_config_are_found_too(self):
        resp = self.call('POST', COLLECTION, json=provider_body(config={
            'headers': {'Authorization': 'Bearer ' + secret()},
            'x-api-key': secret(), 'openai_api_key': secret(),
            'api_token': secret(), 'extra': [{'db_password': secret()}]}))
        self.assertProblem(resp, 422, fields=[
            '/config/headers/Authorization', '/config/x-api-key',
            '/config/openai_api_key', '/config/api_token',
            '/config/extra/0/db_password'])
        self.assertNotIn(MARK, resp.text)

    def test_other_config_members_are_kept_as_given(self):
        config = {'temperature': 0.7, 'max_tokens': 1024,
                  'stop': ['\n\n'], 'extra': {'a': None}}
        self.check('mistral', config, None)

    def test_every_problem_is_reported_at_once(self):
        resp = self.call('POST', COLLECTION, json={
            'name': '', 'provider_type': 'azure_openai', 'priority': 0,
            'config': {'endpoint': 'http://x'}})
        self.assertProblem(resp, 422, fields=['/name', '/priority'])
        resp = self.call('POST', COLLECTION, json={
            'name': 'a', 'provider_type': 'azure_openai',
            'config': {'endpoint': 'http://x', 'api_key': 'k',
                       'model': 3}})
        self.assertProblem(resp, 422, fields=[
            '/config/endpoint', '/config/deployment', '/config/api_key',
            '/config/model'])


# ---------------------------------------------------------------------
# Read and list.
# ---------------------------------------------------------------------

class ProviderReadTest(ProviderTestCase):

    def test_get_answers_200_with_the_provider_and_its_etag(self):
        created, resp = self.create(name='read me', credentials={
            'api_key': secret()})
        got = self.call('GET', COLLECTION + '/' + created['id'])
        self.assertEqual(self.assertJson(got, 200), created)
        self.assertEqual(got.headers.get('ETag'), resp.headers.get('ETag'))

    def test_get_of_an_upper_case_id_answers_the_provider(self):
        created, _ = self.create()
        got = self.call('GET', COLLECTION + '/' + created['id'].upper())
        self.assertEqual(self.assertJson(got, 200)['id'], created['id'])

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(self.call('GET', COLLECTION + '/' + random_uuid()),
                           404)

    def test_non_uuid_id_in_path_answers_404(self):
        for bad in ('1', 'not-a-uuid', random_uuid() + 'x'):
            with self.subTest(id=bad):
                self.assertProblem(self.call('GET', COLLECTION + '/' + bad),
                                   404)

    def test_get_with_a_query_parameter_answers_400(self):
        created, _ = self.create()
        self.assertProblem(self.call(
            'GET', COLLECTION + '/' + created['id'] + '?expand=credentials'),
            400)


class ProviderListTest(ProviderTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own, so the list holds exactly these five.
        cls.tenant = cls.stack.new_tenant('list')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.ids = []
        specs = [('openai', True), ('ollama', True), ('ollama', False),
                 ('mistral', False), ('ollama', True)]
        for i, (t, active) in enumerate(specs):
            resp = cls.stack.request(
                'POST', COLLECTION, host=cls.tenant.slug,
                token=cls.tenant.token,
                json=provider_body(name='provider %d' % i, provider_type=t,
                                   is_active=active,
                                   credentials={'api_key': secret()}))
            RECEIVED.append(resp)
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)

    def page(self, query):
        return self.call('GET', COLLECTION + query)

    def test_list_answers_newest_first_with_has_credentials(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual([p['id'] for p in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        for item in body['items']:
            self.assertEqual(set(item), PROVIDER_KEYS)
            self.assertIs(item['has_credentials'], True)

    def test_list_pages_with_limit_and_cursor(self):
        seen, pages, query = [], [], '?limit=2'
        while True:
            body = self.assertJson(self.page(query), 200)
            pages.append(len(body['items']))
            seen += [p['id'] for p in body['items']]
            if body['next_cursor'] is None:
                break
            self.assertLess(len(pages), 10)
            query = '?limit=2&cursor=' + body['next_cursor']
        self.assertEqual(pages, [2, 2, 1])
        self.assertEqual(seen, list(reversed(self.ids)))

    def test_list_filters_by_provider_type_and_is_active(self):
        body = self.assertJson(self.page('?provider_type=ollama'), 200)
        self.assertEqual([p['id'] for p in body['items']],
                         [self.ids[4], self.ids[2], self.ids[1]])
        body = self.assertJson(self.page('?is_active=false'), 200)
        self.assertEqual([p['id'] for p in body['items']],
                         [self.ids[3], self.ids[2]])
        body = self.assertJson(
            self.page('?provider_type=ollama&is_active=true&limit=1'), 200)
        self.assertEqual([p['id'] for p in body['items']], [self.ids[4]])
        second = self.assertJson(self.page(
            '?provider_type=ollama&is_active=true&limit=1&cursor=' +
            body['next_cursor']), 200)
        self.assertEqual([p['id'] for p in second['items']], [self.ids[1]])
        self.assertIsNone(second['next_cursor'])
        body = self.assertJson(self.page('?provider_type=google'), 200)
        self.assertEqual(body, {'items': [], 'next_cursor': None})

    def test_list_with_bad_parameters_answers_400_naming_them(self):
        for query, name in (('?provider_type=gpt', 'provider_type'),
                            ('?is_active=yes', 'is_active'),
                            ('?limit=0', 'limit'), ('?limit=101', 'limit'),
                            ('?cursor=abc', 'cursor'),
                            ('?credentials=1', None)):
            with self.subTest(query=query):
                self.assertProblem(self.page(query), 400,
                                   fields=[name] if name else None)

    def test_list_holds_no_provider_of_another_tenant(self):
        theirs, _ = self.create(tenant=self.other, name='theirs')
        body = self.assertJson(self.page('?limit=100'), 200)
        self.assertNotIn(theirs['id'], [p['id'] for p in body['items']])
        self.assertEqual(len(body['items']), 5)


# ---------------------------------------------------------------------
# Update and delete.
# ---------------------------------------------------------------------

class ProviderUpdateTest(ProviderTestCase):

    def patch(self, provider_id, body, **kwargs):
        return self.call('PATCH', COLLECTION + '/' + provider_id, json=body,
                         **kwargs)

    def test_patch_changes_only_the_given_fields(self):
        created, _ = self.create(priority=5, config={'model': 'gpt-4o'})
        body = self.assertJson(self.patch(created['id'], {
            'name': 'renamed', 'is_active': False}), 200)
        self.assertEqual(body['name'], 'renamed')
        self.assertIs(body['is_active'], False)
        for key in ('priority', 'config', 'provider_type', 'created_at',
                    'has_credentials'):
            self.assertEqual(body[key], created[key], key)
        self.assertGreater(body['updated_at'], created['updated_at'])
        self.assertEqual(self.stored(created['id'], 'name, priority'),
                         [('renamed', '5')])

    def test_patch_with_credentials_replaces_them(self):
        first = {'api_key': secret()}
        second = {'api_key': secret(), 'project': 'p'}
        created, _ = self.create(credentials=first)
        before = stored_sealed(self.stack, self.schema, created['id'])

        body = self.assertJson(self.patch(created['id'],
                                          {'credentials': second}), 200)
        self.assertIs(body['has_credentials'], True)
        after = stored_sealed(self.stack, self.schema, created['id'])
        self.assertNotEqual(before, after)
        context = provider_context(self.tenant.id, created['id'])
        self.assertEqual(json.loads(unseal(self.master_key(), after,
                                           context)), second)

    def test_patch_without_credentials_keeps_them_as_they_are(self):
        created, _ = self.create(credentials={'api_key': secret()})
        before = stored_sealed(self.stack, self.schema, created['id'])
        body = self.assertJson(self.patch(created['id'], {'priority': 9}),
                               200)
        self.assertIs(body['has_credentials'], True)
        self.assertEqual(stored_sealed(self.stack, self.schema,
                                       created['id']), before)

    def test_patch_with_null_credentials_removes_them(self):
        created, _ = self.create(credentials={'api_key': secret()})
        body = self.assertJson(self.patch(created['id'],
                                          {'credentials': None}), 200)
        self.assertIs(body['has_credentials'], False)
        self.assertIsNone(stored_sealed(self.stack, self.schema,
                                        created['id']))
        got = self.assertJson(self.call('GET', COLLECTION + '/' +
                                        created['id']), 200)
        self.assertIs(got['has_credentials'], False)

    def test_patch_adds_credentials_to_a_provider_without(self):
        created, _ = self.create()
        body = self.assertJson(self.patch(created['id'], {
            'credentials': {'api_key': secret()}}), 200)
        self.assertIs(body['has_credentials'], True)

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        etag = resp.headers['ETag']
        self.assertJson(self.patch(created['id'], {'name': 'one'}), 200)
        stale = self.patch(created['id'], {'name': 'two'},
                           headers={'If-Match': etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'name'), [('one',)])

    def test_patch_with_the_current_if_match_answers_200(self):
        created, resp = self.create()
        done = self.patch(created['id'], {'name': 'two'},
                          headers={'If-Match': resp.headers['ETag']})
        self.assertJson(done, 200)
        self.assertNotEqual(done.headers['ETag'], resp.headers['ETag'])

    def test_empty_patch_answers_200_and_changes_nothing(self):
        created, resp = self.create()
        body = self.assertJson(self.patch(created['id'], {}), 200)
        self.assertEqual(body, created)

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _ = self.create(credentials={'api_key': secret()})
        before = self.stored(created['id'], '*')
        for change, fields in (
                ({'name': ''}, ['/name']),
                ({'priority': 0, 'is_active': 'no'},
                 ['/priority', '/is_active']),
                ({'provider_type': None}, ['/provider_type']),
                ({'config': None}, ['/config']),
                ({'credentials': {}}, ['/credentials']),
                ({'id': random_uuid()}, ['/id']),
                ({'tenant_id': self.other.id}, ['/tenant_id']),
                ({'has_credentials': False}, ['/has_credentials']),
                ({'role': 'admin'}, ['/role'])):
            with self.subTest(change=change):
                self.assertProblem(self.patch(created['id'], change), 422,
                                   fields=fields)
        self.assertEqual(self.stored(created['id'], '*'), before)

    def test_patch_of_config_is_checked_against_the_stored_type(self):
        created, _ = self.create(provider_type='ollama', config={
            'base_url': 'http://localhost:11434'})
        self.assertProblem(self.patch(created['id'], {
            'config': {'base_url': 'http://ollama.example.com'}}), 422,
            fields=['/config/base_url'])
        body = self.assertJson(self.patch(created['id'], {
            'config': {'base_url': 'http://127.0.0.1:11434'}}), 200)
        self.assertEqual(body['config'],
                         {'base_url': 'http://127.0.0.1:11434'})

    def test_patch_merges_config_and_checks_the_result(self):
        created, _ = self.create(config={'model': 'gpt-4o',
                                         'temperature': 0.2})
        body = self.assertJson(self.patch(created['id'], {
            'config': {'temperature': None, 'max_tokens': 512}}), 200)
        self.assertEqual(body['config'], {'model': 'gpt-4o',
                                          'max_tokens': 512})
        # The merged result is what the type's rules see.
        self.assertProblem(self.patch(created['id'], {
            'config': {'base_url': 'http://plain.example.com'}}), 422,
            fields=['/config/base_url'])

    def test_patch_of_type_is_checked_against_the_stored_config(self):
        created, _ = self.create(provider_type='ollama', config={
            'base_url': 'http://localhost:11434'})
        self.assertProblem(self.patch(created['id'], {
            'provider_type': 'openai'}), 422, fields=['/config/base_url'])
        self.assertProblem(self.patch(created['id'], {
            'provider_type': 'azure_openai'}), 422,
            fields=['/config/base_url', '/config/endpoint',
                    '/config/deployment'])
        body = self.assertJson(self.patch(created['id'], {
            'provider_type': 'openai_compatible'}), 200)
        self.assertEqual(body['provider_type'], 'openai_compatible')
        # config is a merge patch: the old type's base_url must go.
        body = self.assertJson(self.patch(created['id'], {
            'provider_type': 'azure_openai',
            'config': {'base_url': None, 'endpoint': 'https://a.example',
                       'deployment': 'd'}}), 200)
        self.assertEqual(body['provider_type'], 'azure_openai')

    def test_patch_of_an_unknown_id_answers_404(self):
        self.assertProblem(self.patch(random_uuid(), {'name': 'x'}), 404)


class ProviderDeleteTest(ProviderTestCase):

    def delete(self, provider_id, **kwargs):
        return self.call('DELETE', COLLECTION + '/' + provider_id, **kwargs)

    def test_delete_answers_204_and_the_provider_is_gone(self):
        created, _ = self.create(credentials={'api_key': secret()})
        resp = self.delete(created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(self.call('GET', COLLECTION + '/' +
                                     created['id']), 404)
        self.assertEqual(self.stored(created['id'], 'id'), [])

    def test_delete_releases_the_agents_that_use_the_provider(self):
        created, _ = self.create()
        agent = self.assertJson(self.call('POST', '/api/v1/agents', json={
            'name': 'a', 'role': 'r', 'goal': 'g',
            'llm_provider_id': created['id']}), 201)
        self.assertStatus(self.delete(created['id']), 204)
        got = self.call('GET', '/api/v1/agents/' + agent['id'])
        body = self.assertJson(got, 200)
        self.assertIsNone(body['llm_provider_id'])
        self.assertGreater(body['updated_at'], agent['updated_at'])

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', COLLECTION + '/' + created['id'],
                                  json={'name': 'moved'}), 200)
        self.assertProblem(self.delete(created['id'], headers={
            'If-Match': resp.headers['ETag']}), 412)
        self.assertEqual(len(self.stored(created['id'], 'id')), 1)

    def test_delete_with_the_current_if_match_answers_204(self):
        created, resp = self.create()
        self.assertStatus(self.delete(created['id'], headers={
            'If-Match': resp.headers['ETag']}), 204)

    def test_delete_twice_answers_404(self):
        created, _ = self.create()
        self.assertStatus(self.delete(created['id']), 204)
        self.assertProblem(self.delete(created['id']), 404)


# ---------------------------------------------------------------------
# Roles and tenants.
# ---------------------------------------------------------------------

class ProviderRoleTest(ProviderTestCase):

    def test_viewer_and_member_read_providers(self):
        created, _ = self.create(credentials={'api_key': secret()})
        for name, token in (('viewer', self.viewer),
                            ('member', self.member)):
            with self.subTest(role=name):
                self.assertJson(self.call('GET', COLLECTION, token=token),
                                200)
                got = self.assertJson(self.call(
                    'GET', COLLECTION + '/' + created['id'], token=token),
                    200)
                self.assertEqual(got, created)

    def test_viewer_and_member_may_not_write_providers(self):
        created, _ = self.create()
        before_count = self.count()
        before_row = self.stored(created['id'], '*')
        for name, token in (('viewer', self.viewer),
                            ('member', self.member)):
            with self.subTest(role=name):
                self.assertProblem(self.call(
                    'POST', COLLECTION, token=token, json=provider_body(
                        credentials={'api_key': secret()})), 403)
                self.assertProblem(self.call(
                    'PATCH', COLLECTION + '/' + created['id'], token=token,
                    json={'name': 'x', 'credentials': {
                        'api_key': secret()}}), 403)
                self.assertProblem(self.call(
                    'DELETE', COLLECTION + '/' + created['id'],
                    token=token), 403)
        self.assertEqual(self.count(), before_count)
        self.assertEqual(self.stored(created['id'], '*'), before_row)

    def test_admin_writes_providers(self):
        created, _ = self.create()
        self.assertJson(self.call('PATCH', COLLECTION + '/' + created['id'],
                                  json={'name': 'x'}), 200)
        self.assertStatus(self.call('DELETE', COLLECTION + '/' +
                                    created['id']), 204)

    def test_no_token_answers_401_for_every_verb(self):
        created, _ = self.create()
        for method, path in (('GET', COLLECTION), ('POST', COLLECTION),
                             ('GET', COLLECTION + '/' + created['id']),
                             ('PATCH', COLLECTION + '/' + created['id']),
                             ('DELETE', COLLECTION + '/' + created['id'])):
            with self.subTest(method=method, path=path):
                resp = self.stack.request(method, path,
                                          host=self.tenant.slug,
                                          json={'name': 'x'})
                RECEIVED.append(resp)
                self.assertProblem(resp, 401)


class ProviderTenantTest(ProviderTestCase):

    def test_another_tenants_id_answers_404_for_every_verb(self):
        theirs, _ = self.create(tenant=self.other, credentials={
            'api_key': secret()})
        before = self.stored(theirs['id'], '*', schema=self.other_schema)
        nowhere = random_uuid()
        for method, body in (('GET', None), ('PATCH', {'name': 'mine'}),
                             ('PATCH', {'credentials': {
                                 'api_key': secret()}}),
                             ('DELETE', None)):
            with self.subTest(method=method, body=body):
                resp = self.call(method, COLLECTION + '/' + theirs['id'],
                                 json=body)
                self.assertProblem(resp, 404)
                unknown = self.call(method, COLLECTION + '/' + nowhere,
                                    json=body)
                self.assertSameProblem(resp, unknown)
        self.assertEqual(self.stored(theirs['id'], '*',
                                     schema=self.other_schema), before)

    def test_a_token_of_another_tenant_answers_401(self):
        resp = self.call('GET', COLLECTION, token=self.other.token)
        self.assertProblem(resp, 401)


# ---------------------------------------------------------------------
# Credentials never shown.
# ---------------------------------------------------------------------

class CredentialSecrecyTest(ProviderTestCase):

    def test_no_error_repeats_a_secret(self):
        s = secret()
        raw = '{"name": "x", "provider_type": "openai", "credentials": '
        cases = [
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'api_key': [s]})}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'%s key' % s: 'value'})}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'api_key': s, 'n': 5})}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'api_key': s * 1000})}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'api_key': s}, priority=0)}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials={'api_key': s}, config={'token': s})}),
            ('POST', COLLECTION, {'json': provider_body(
                config={'base_url': 'https://u:%s@a.example' % s})}),
            ('POST', COLLECTION, {'json': provider_body(
                credentials=s)}),
            ('POST', COLLECTION, {'body': raw + '{"api_key": "%s\x01"}}'
                                  % s, 'headers': {
                                      'Content-Type': 'application/json'}}),
            ('POST', COLLECTION, {'body': raw + '{"api_key": "%s", '
                                  '"api_key": "%s"}}' % (s, s),
                                  'headers': {
                                      'Content-Type': 'application/json'}}),
            ('POST', COLLECTION, {'body': raw + '{"api_key": "%s"' % s,
                                  'headers': {
                                      'Content-Type': 'application/json'}}),
            ('POST', COLLECTION, {'body': raw + '{"api_key": "%s"}}' % s,
                                  'headers': {'Content-Type': 'text/plain'}}),
            ('POST', COLLECTION, {'token': self.viewer, 'json':
                                  provider_body(credentials={
                                      'api_key': s})}),
            ('PATCH', COLLECTION + '/' + random_uuid(), {'json': {
                'credentials': {'api_key': s}}}),
            ('POST', COLLECTION + '?key=' + s, {'json': provider_body()}),
        ]
        for method, path, kwargs in cases:
            with self.subTest(path=path, kwargs=str(kwargs)[:80]):
                resp = self.call(method, path, **kwargs)
                self.assertGreaterEqual(resp.status, 400, resp)
                self.assertNotIn(MARK, resp.text)
                self.assertNotIn(MARK, str(resp.headers.items()))

    def test_an_oversized_body_with_a_secret_answers_413_without_it(self):
        resp = self.call('POST', COLLECTION, json=provider_body(
            credentials={'api_key': secret() + 'x' * (1 << 20)}))
        self.assertProblem(resp, 413)
        self.assertNotIn(MARK, resp.text)

    def test_responses_never_hold_the_ciphertext(self):
        created, resp = self.create(credentials={'api_key': secret()})
        sealed = stored_sealed(self.stack, self.schema, created['id'])
        listed = self.call('GET', COLLECTION + '?limit=100')
        for r in (resp, listed, self.call('GET', COLLECTION + '/' +
                                          created['id'])):
            self.assertNotIn(sealed.hex(), r.text)
            self.assertNotIn('encrypted', r.text)
            self.assertNotIn('credentials"', r.text.replace(
                'has_credentials"', ''))

    def test_crewd_log_never_holds_a_secret(self):
        # At level debug, after every request of this module so far.
        self.create(credentials={'api_key': secret()})
        log = self.stack.crewd_log()
        self.assertIn('POST /api/v1/llm-providers', log)
        self.assertNotIn(MARK, log)


# ---------------------------------------------------------------------
# A ciphertext copied to another row or tenant.
# ---------------------------------------------------------------------

class CopiedCiphertextTest(ProviderTestCase):

    def copy_sealed(self, from_id, from_schema, to_id, to_schema):
        self.stack.psql(
            'UPDATE :"to".llm_providers SET encrypted_credentials ='
            ' (SELECT encrypted_credentials FROM :"from".llm_providers'
            "  WHERE id = :'src') WHERE id = :'dst'",
            **{'from': from_schema, 'to': to_schema, 'src': from_id,
               'dst': to_id})

    def keys_check(self):
        proc = self.stack.crewctl('keys', 'check', check=False)
        self.assertNotIn(MARK, proc.stdout + proc.stderr)
        return proc

    def test_a_copied_ciphertext_does_not_open_anywhere_else(self):
        key = self.master_key()
        one, _ = self.create(name='one', credentials={'api_key': secret()})
        two, _ = self.create(name='two', credentials={'api_key': secret()})
        theirs, _ = self.create(tenant=self.other, name='theirs',
                                credentials={'api_key': secret()})
        self.assertEqual(self.keys_check().returncode, 0)
        original = stored_sealed(self.stack, self.schema, one['id'])

        # To another row of the same tenant, and to another tenant's row.
        self.copy_sealed(one['id'], self.schema, two['id'], self.schema)
        self.copy_sealed(one['id'], self.schema, theirs['id'],
                         self.other_schema)
        for tenant_id, pid, schema in (
                (self.tenant.id, two['id'], self.schema),
                (self.other.id, theirs['id'], self.other_schema)):
            copied = stored_sealed(self.stack, schema, pid)
            self.assertEqual(copied, original)
            self.assertIsNone(unseal(key, copied,
                                     provider_context(tenant_id, pid)))
            self.assertIsNotNone(unseal(key, copied, provider_context(
                self.tenant.id, one['id'])))

        # Reading needs no plaintext and goes on working.
        got = self.assertJson(self.call('GET', COLLECTION + '/' + two['id']),
                              200)
        self.assertIs(got['has_credentials'], True)

        # Opening every credential finds exactly the two copies.
        proc = self.keys_check()
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn('provider %s: does not open' % two['id'], proc.stdout)
        self.assertIn('provider %s: does not open' % theirs['id'],
                      proc.stdout)
        self.assertNotIn('provider %s:' % one['id'], proc.stdout)
        self.assertEqual(parse_totals(proc.stdout)['failed'], 2)

        # New credentials seal for their own row again.
        for tenant, pid in ((self.tenant, two['id']),
                            (self.other, theirs['id'])):
            self.assertJson(self.call('PATCH', COLLECTION + '/' + pid,
                                      tenant=tenant, json={
                                          'credentials': {
                                              'api_key': secret()}}), 200)
        proc = self.keys_check()
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(parse_totals(proc.stdout)['failed'], 0)


# ---------------------------------------------------------------------
# The master key: creation, the canary, a wrong key, rotation.
# ---------------------------------------------------------------------

class RequestLoop(threading.Thread):
    """GETs a tenant's providers until stopped, bounded in count and
    time, keeping every response."""

    def __init__(self, stack, tenant):
        super().__init__(daemon=True)
        self.stack = stack
        self.tenant = tenant
        self.stopping = threading.Event()
        self.responses = []
        self.errors = []

    def run(self):
        deadline = time.monotonic() + LOOP_MAX_SECONDS
        while (not self.stopping.is_set() and time.monotonic() < deadline
               and len(self.responses) < LOOP_MAX_REQUESTS):
            try:
                self.responses.append(self.stack.request(
                    'GET', COLLECTION, host=self.tenant.slug,
                    token=self.tenant.token, timeout=15))
            except OSError as e:
                self.errors.append(e)
            time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        self.join(LOOP_MAX_SECONDS + 20)
        RECEIVED.extend(self.responses)


class MasterKeyTest(ProviderTestCase):
    # A stack of its own: these tests change crewd's key configuration.
    stack_options = {'log_level': 'debug', 'workers': 3}

    def setUp(self):
        self.original_conf = dict(self.stack.conf)

    def tearDown(self):
        # Whatever a test did, the stack leaves with its own key again.
        if self.stack.conf != self.original_conf:
            self.set_conf(**self.original_conf)
            self.reload_and_wait()

    def set_conf(self, **changes):
        self.stack.conf.update(changes)
        write_conf(self.stack.conf_path, self.stack.conf)

    def reload_and_wait(self):
        """SIGHUP; waits until a new set of workers serves.  Returns the
        new worker pids."""
        old = set(self.stack.crewd_pids()[1])
        workers = int(self.stack.conf['workers'])
        self.stack.reload_crewd()

        def replaced():
            now = set(self.stack.crewd_pids()[1])
            return now if len(now) == workers and not now & old else None
        pids = wait_for(replaced, 30)
        self.assertTrue(pids, 'workers not replaced: %s' % ', '.join(
            '%d in %s' % (pid, process_wait_channel(pid))
            for pid in self.stack.crewd_pids()[1]))
        return pids

    def wait_log(self, text, start, timeout=15):
        return wait_for(lambda: text in self.stack.crewd_log()[start:],
                        timeout)

    def new_key(self, name):
        path = os.path.join(self.stack.dir, name)
        proc = self.stack.crewctl('keys', 'create', '--file', path)
        self.assertIn('master key written to %s' % path, proc.stdout)
        return path

    def run_crewd(self, conf, *args):
        path = os.path.join(self.stack.dir, 'other-%s.conf' %
                            os.urandom(3).hex())
        write_conf(path, conf)
        return subprocess.run(
            [self.stack.tools['crewd'], '-c', path] + list(args),
            capture_output=True, text=True, timeout=90)

    def side_conf(self, **changes):
        """crewd's configuration, with a socket and pid file of its own."""
        conf = dict(self.stack.conf)
        conf['listen'] = os.path.join(self.stack.run_dir, 'side.sock')
        conf['pid_file'] = os.path.join(self.stack.run_dir, 'side.pid')
        conf.update(changes)
        return conf

    def test_keys_create_is_idempotent_and_checks_the_canary(self):
        path = self.stack.conf['master_key_file']
        key = read_key(path)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        proc = self.stack.crewctl('keys', 'create')
        self.assertIn('master key %s exists; left as it is (key id %s)' % (
            path, key_id(key)), proc.stdout)
        self.assertIn('canary: opens with key %s' % key_id(key),
                      proc.stdout)
        self.assertEqual(read_key(path), key)
        self.assertEqual(canary_key_id(self.stack), key_id(key))

    def test_keys_create_with_a_wrong_configured_key_fails(self):
        wrong = self.new_key('create-wrong.key')
        path = os.path.join(self.stack.dir, 'create-wrong.conf')
        write_conf(path, dict(self.stack.conf, master_key_file=wrong))
        proc = subprocess.run(
            [self.stack.tools['crewctl'], '-c', path, 'keys', 'create'],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn(wrong, proc.stderr)
        self.assertIn('is wrong', proc.stderr)

    def test_crewd_with_a_wrong_key_refuses_to_start_naming_the_file(self):
        wrong = self.new_key('wrong.key')
        conf = self.side_conf(master_key_file=wrong)
        for args in ((), ('-t',)):
            with self.subTest(args=args):
                proc = self.run_crewd(conf, *args)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertIn('master key file %s' % wrong, proc.stderr)
                self.assertIn(key_id(read_key(wrong)), proc.stderr)
                self.assertIn(key_id(read_key(
                    self.stack.conf['master_key_file'])), proc.stderr)
                self.assertFalse(os.path.exists(conf['listen']))

    def test_crewd_with_a_group_readable_key_refuses_to_start(self):
        loose = self.new_key('loose.key')
        os.chmod(loose, 0o640)
        proc = self.run_crewd(self.side_conf(master_key_file=loose), '-t')
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(loose, proc.stderr)
        self.assertIn('chmod 600', proc.stderr)

    def test_crewd_t_accepts_the_right_key(self):
        proc = self.run_crewd(self.side_conf(), '-t')
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_reload_with_a_wrong_key_is_refused_and_crewd_serves_on(self):
        tenant = self.stack.new_tenant('reload')
        wrong = self.new_key('reload-wrong.key')
        master, workers = self.stack.crewd_pids()
        start = len(self.stack.crewd_log())
        self.set_conf(master_key_file=wrong)
        self.stack.reload_crewd()
        self.assertTrue(self.wait_log('reload refused', start),
                        self.stack.crewd_log()[start:])
        self.assertIn(wrong, self.stack.crewd_log()[start:])
        time.sleep(0.5)
        self.assertEqual(self.stack.crewd_pids(), (master, workers))
        resp = self.call('POST', COLLECTION, tenant=tenant,
                         json=provider_body(credentials={
                             'api_key': secret()}))
        body = self.assertJson(resp, 201)
        sealed = stored_sealed(self.stack, self.stack.tenant_schema(
            tenant.id), body['id'])
        self.assertEqual(sealed[1:5].hex(), key_id(read_key(
            self.original_conf['master_key_file'])))

    def test_rotation_reseals_every_credential_while_crewd_serves(self):
        stack = self.stack
        old_path = stack.conf['master_key_file']
        old_id = key_id(read_key(old_path))
        tenants = [stack.new_tenant('rot'), stack.new_tenant('rot')]
        plain = {}
        for tenant in tenants:
            for i in range(3):
                body, _ = self.create(tenant=tenant, name='p%d' % i,
                                      credentials={'api_key': secret()})
                plain[body['id']] = tenant.id
            self.create(tenant=tenant, name='bare')
        before = all_sealed(stack)
        self.assertTrue(before)
        self.assertEqual({s[1:5].hex() for _, _, s in before}, {old_id})

        loop = RequestLoop(stack, tenants[0])
        loop.start()
        try:
            # 1. A new key; 2. crewd seals with it and still opens the old.
            new_path = self.new_key('rotated.key')
            new_id = key_id(read_key(new_path))
            self.set_conf(master_key_file=new_path,
                          master_key_previous_files=old_path)
            proc = self.run_crewd(self.side_conf(), '-t')
            self.assertEqual(proc.returncode, 0, proc.stderr)
            start = len(stack.crewd_log())
            self.reload_and_wait()
            self.assertIn('master keys changed: sealing with key %s' %
                          new_id, stack.crewd_log()[start:])

            # What crewd seals from now on carries the new key.
            fresh, _ = self.create(tenant=tenants[1], name='fresh',
                                   credentials={'api_key': secret()})
            sealed = stored_sealed(stack, stack.tenant_schema(
                tenants[1].id), fresh['id'])
            self.assertEqual(sealed[1:5].hex(), new_id)

            proc = stack.crewctl('keys', 'check')
            totals = parse_totals(proc.stdout)
            self.assertEqual(totals['failed'], 0)
            self.assertEqual(totals['current_key'], 1)
            self.assertIn('under a previous key', proc.stdout)

            # Dropping the old key before rotating is refused: the
            # canary is still under it.
            start = len(stack.crewd_log())
            self.set_conf(master_key_previous_files='')
            stack.reload_crewd()
            self.assertTrue(self.wait_log('reload refused', start))
            self.assertIn('key id %s' % old_id, stack.crewd_log()[start:])
            self.set_conf(master_key_previous_files=old_path)

            # 3. Rotate, refusing a key that is not the configured one.
            proc = stack.crewctl('keys', 'rotate', '--new-key', old_path,
                                 check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn('is not the configured master_key_file',
                          proc.stderr)

            proc = stack.crewctl('keys', 'rotate', '--new-key', new_path)
            totals = parse_totals(proc.stdout)
            self.assertEqual(totals['resealed'], len(before))
            self.assertEqual(totals['failed'], 0)
            self.assertIn('canary: sealed under key %s' % new_id,
                          proc.stdout)
            self.assertEqual(canary_key_id(stack), new_id)

            # 4. Every ciphertext carries the new key and opens under it,
            # for its own row.
            key = read_key(new_path)
            after = all_sealed(stack)
            self.assertEqual(len(after), len(before) + 1)
            for tenant_id, pid, sealed in after:
                self.assertEqual(sealed[1:5].hex(), new_id)
                self.assertIsNotNone(unseal(
                    key, sealed, provider_context(tenant_id, pid)))
            proc = stack.crewctl('keys', 'check')
            totals = parse_totals(proc.stdout)
            self.assertEqual(totals['credentials'], len(after))
            self.assertEqual(totals['current_key'], len(after))
            self.assertEqual(totals['failed'], 0)

            # A second run finds nothing to do.
            proc = stack.crewctl('keys', 'rotate', '--new-key', new_path)
            self.assertEqual(parse_totals(proc.stdout)['resealed'], 0)

            # 5. The old key leaves the configuration.
            start = len(stack.crewd_log())
            self.set_conf(master_key_previous_files='')
            self.reload_and_wait()
            self.assertNotIn('reload refused', stack.crewd_log()[start:])
            proc = stack.crewctl('keys', 'check')
            self.assertEqual(parse_totals(proc.stdout)['failed'], 0)
        finally:
            loop.stop()

        self.assertEqual(loop.errors, [])
        self.assertGreater(len(loop.responses), 10)
        bad = [r for r in loop.responses if r.status != 200]
        self.assertEqual(bad, [])
        for pid, tenant_id in plain.items():
            tenant = tenants[0] if tenants[0].id == tenant_id else tenants[1]
            got = self.assertJson(self.call(
                'GET', COLLECTION + '/' + pid, tenant=tenant), 200)
            self.assertIs(got['has_credentials'], True)

        # The new key is now the stack's own.
        self.original_conf = dict(self.stack.conf)


def tearDownModule():
    found = [r for r in RECEIVED
             if MARK in r.text or MARK in str(r.headers.items())]
    logs = [s.name for s in STACKS if MARK in s.crewd_log()]
    if found or logs:
        raise AssertionError('a secret was shown: responses %r, logs of %r'
                             % (found[:3], logs))


if __name__ == '__main__':
    crewtest.main()
