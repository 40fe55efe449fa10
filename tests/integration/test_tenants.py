"""Tenants: sign-up on the apex host, the slug grammar, the schema each
tenant gets, and crewctl's tenant commands."""

import os
import signal

import crewtest
import mongowire
from crewtest import SCHEMA_RE, StackTestCase, UUID_RE
from stack import wait_for

MONGO_KINDS = ('execution_logs', 'chat_messages', 'audit_logs')
SEVEN_TABLES = {'agents', 'crew_agents', 'crews', 'executions', 'flows',
                'llm_providers', 'tools'}


def unique_slug(prefix='acme'):
    return '%s-%s' % (prefix, os.urandom(4).hex())


def signup_body(slug, **changes):
    body = {
        'name': 'Acme Corporation',
        'slug': slug,
        'admin_email': 'admin@%s.test' % slug,
        'admin_password': crewtest.DEFAULT_PASSWORD,
    }
    body.update(changes)
    return body


class TenantTestCase(StackTestCase):

    def signup(self, body, host=None):
        return self.stack.request('POST', '/api/v1/tenants', host=host,
                                  json=body)

    def counts(self):
        """What a sign-up adds: tenant schemas, tenants, users."""
        return (
            self.stack.psql_value(
                "SELECT count(*) FROM pg_namespace "
                "WHERE nspname LIKE 'tenant\\_%'"),
            self.stack.psql_value("SELECT count(*) FROM public.tenants"),
            self.stack.psql_value("SELECT count(*) FROM public.users"),
        )

    def tables_of(self, schema):
        rows = self.stack.psql(
            "SELECT c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :'schema' AND c.relkind IN ('r', 'p')",
            schema=schema)
        return {r[0] for r in rows}

    def write_password_file(self, name, password):
        path = os.path.join(self.stack.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(password)
        return path


class SignUpTest(TenantTestCase):

    def test_signup_on_apex_answers_201_with_the_tenant(self):
        slug = unique_slug()
        resp = self.signup(signup_body(slug, name='Acme Corporation'))

        body = self.assertJson(resp, 201)
        self.assertRegex(body['id'], UUID_RE)
        self.assertEqual(body['name'], 'Acme Corporation')
        self.assertEqual(body['slug'], slug)
        self.assertIs(body['is_active'], True)
        self.assertTimestamp(body['created_at'])
        for secret in ('admin_password', 'password', 'password_hash'):
            self.assertNotIn(secret, body)
        self.assertEqual(resp.headers.get('Location'),
                         'https://%s.localhost:%d/api/v1/tenant'
                         % (slug, self.stack.https_port))

    def test_location_of_a_signup_names_the_tenants_own_record(self):
        slug = unique_slug()
        body = self.assertJson(self.signup(signup_body(slug)), 201)
        token = self.stack.login(slug, 'admin@%s.test' % slug,
                                 signup_body(slug)['admin_password'])

        resp = self.stack.request('GET', '/api/v1/tenant', host=slug,
                                  token=token)
        record = self.assertJson(resp, 200)
        self.assertEqual(record['id'], body['id'])
        self.assertEqual(record['slug'], slug)
        self.assertEqual(record['name'], body['name'])
        self.assertEqual(record['created_at'], body['created_at'])
        self.assertTrue(resp.headers.get('ETag'))

    def test_signup_stores_the_tenant_and_its_admin(self):
        slug = unique_slug()
        resp = self.signup(signup_body(slug, name='Stored Inc'))
        tenant_id = self.assertJson(resp, 201)['id']

        rows = self.stack.psql(
            "SELECT name, slug, is_active FROM public.tenants "
            "WHERE id = :'id'", id=tenant_id)
        self.assertEqual(rows, [('Stored Inc', slug, 't')])
        users = self.stack.psql(
            "SELECT email, role, is_active, password_hash LIKE '$argon2id$%' "
            "FROM public.users WHERE tenant_id = :'id'", id=tenant_id)
        self.assertEqual(users, [('admin@%s.test' % slug, 'admin', 't',
                                  't')])

    def test_signup_admin_can_log_in(self):
        slug = unique_slug()
        self.assertJson(self.signup(signup_body(slug)), 201)

        token = self.stack.login(slug)
        resp = self.stack.request('GET', '/api/v1/users/me', host=slug,
                                  token=token)
        body = self.assertJson(resp, 200)
        self.assertEqual(body['email'], 'admin@%s.test' % slug)
        self.assertEqual(body['role'], 'admin')

    def test_slug_of_63_characters_is_accepted(self):
        slug = 'a' * 55 + os.urandom(4).hex()
        self.assertEqual(len(slug), 63)
        body = self.assertJson(self.signup(signup_body(slug)), 201)
        self.assertEqual(body['slug'], slug)
        self.stack.login(slug)

    def test_taken_slug_answers_409(self):
        slug = unique_slug()
        self.assertJson(self.signup(signup_body(slug)), 201)

        resp = self.signup(signup_body(
            slug, name='Other', admin_email='other@%s.test' % slug))
        self.assertProblem(resp, 409)

    def test_taken_slug_leaves_nothing_behind(self):
        slug = unique_slug()
        self.assertJson(self.signup(signup_body(slug)), 201)
        before = self.counts()

        resp = self.signup(signup_body(
            slug, name='Other', admin_email='other@%s.test' % slug))
        self.assertProblem(resp, 409)
        self.assertEqual(self.counts(), before)

    def test_invalid_slugs_answer_422_on_slug(self):
        invalid = [
            'acme"x', 'acme,public', 'acme public', 'acme.corp', 'acme/x',
            'acme_x', 'ACME', 'Acme', '', '-acme', 'acme-', '-',
            'a' * 64, 'acmé',
            'public', 'pg_catalog', 'pg-x', 'tenant_x', 'tenant-x',
            'tenant_template', 'information_schema',
            'www', 'api', 'admin', 'app', 'mail', 'static', 'assets',
            'status', 'docs', 'help', 'support', 'billing', 'auth',
            'login', 'root', 'system', 'metrics', 'health',
        ]
        before = self.counts()
        for slug in invalid:
            with self.subTest(slug=slug):
                resp = self.signup(signup_body(
                    slug, admin_email='admin@invalid.test'))
                self.assertProblem(resp, 422, fields=['/slug'])
        self.assertEqual(self.counts(), before)

    def test_slug_of_wrong_type_answers_422(self):
        for value in (5, None, ['acme'], {'slug': 'acme'}, True):
            with self.subTest(slug=value):
                resp = self.signup(signup_body(
                    value, admin_email='admin@wrong-type.test'))
                self.assertProblem(resp, 422, fields=['/slug'])

    def test_missing_fields_answer_422_naming_each(self):
        slug = unique_slug()
        for field in ('name', 'slug', 'admin_email', 'admin_password'):
            with self.subTest(missing=field):
                body = signup_body(slug)
                del body[field]
                self.assertProblem(self.signup(body), 422,
                                   fields=['/' + field])

    def test_empty_body_object_answers_422_naming_every_field(self):
        self.assertProblem(self.signup({}), 422, fields=[
            '/admin_email', '/admin_password', '/name', '/slug'])

    def test_unknown_field_answers_422(self):
        resp = self.signup(signup_body(unique_slug(), plan='gold'))
        self.assertProblem(resp, 422, fields=['/plan'])

    def test_server_owned_fields_answer_422(self):
        for field, value in (('id', crewtest.random_uuid()),
                             ('is_active', True),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('db_schema', 'tenant_0123456789abcdef')):
            with self.subTest(field=field):
                resp = self.signup(signup_body(unique_slug(),
                                               **{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_invalid_admin_email_answers_422(self):
        for email in ('not-an-email', 'a@b', '@acme.test', 'a b@acme.test'):
            with self.subTest(email=email):
                resp = self.signup(signup_body(unique_slug(),
                                               admin_email=email))
                self.assertProblem(resp, 422, fields=['/admin_email'])

    def test_malformed_json_answers_400(self):
        for text in ('{"name": ', '{"name": "a",}', 'not json', '{}{}'):
            with self.subTest(body=text):
                resp = self.stack.request(
                    'POST', '/api/v1/tenants', body=text,
                    headers={'Content-Type': 'application/json'})
                self.assertProblem(resp, 400)

    def test_signup_on_a_tenant_host_answers_404(self):
        slug = unique_slug()
        self.assertJson(self.signup(signup_body(slug)), 201)

        for host in (slug, 'nosuchtenant'):
            with self.subTest(host=host):
                resp = self.signup(signup_body(unique_slug()), host=host)
                self.assertProblem(resp, 404)


class SchemaTest(TenantTestCase):

    def setUp(self):
        self.slug = unique_slug('schema')
        resp = self.signup(signup_body(self.slug))
        self.tenant_id = self.assertJson(resp, 201)['id']
        self.schema = self.stack.tenant_schema(self.tenant_id)

    def test_schema_name_is_random_and_not_derived_from_the_slug(self):
        self.assertRegex(self.schema, SCHEMA_RE)
        for part in self.slug.split('-'):
            self.assertNotIn(part, self.schema)

        other = self.assertJson(
            self.signup(signup_body(self.slug + 'x')), 201)
        self.assertNotEqual(self.stack.tenant_schema(other['id']),
                            self.schema)

    def test_schema_has_the_seven_tables_of_the_template(self):
        tables = self.tables_of(self.schema)
        self.assertTrue(SEVEN_TABLES <= tables, tables)
        self.assertEqual(tables, self.tables_of('tenant_template'))

    def test_foreign_keys_reference_the_tenants_own_tables(self):
        rows = self.stack.psql(
            "SELECT t.relname, rn.nspname, rt.relname "
            "FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
            "JOIN pg_class rt ON rt.oid = c.confrelid "
            "JOIN pg_namespace rn ON rn.oid = rt.relnamespace "
            "WHERE c.contype = 'f' AND tn.nspname = :'schema'",
            schema=self.schema)
        crew_agents = sorted((r[1], r[2]) for r in rows
                             if r[0] == 'crew_agents')
        self.assertEqual(crew_agents, [(self.schema, 'agents'),
                                       (self.schema, 'crews')])
        for table, ref_schema, ref_table in rows:
            with self.subTest(table=table, references=ref_table):
                self.assertEqual(ref_schema, self.schema)


class CrewctlTest(TenantTestCase):

    def test_crewctl_tenant_create_with_password_file(self):
        slug = unique_slug('cli')
        email = 'owner@%s.test' % slug
        pwfile = self.write_password_file('pw-' + slug, 'cli password 1')

        proc = self.stack.crewctl('tenant', 'create', '--name', 'Cli Co',
                                  '--slug', slug, '--admin-email', email,
                                  '--admin-password-file', pwfile)
        stored = self.stack.psql(
            "SELECT id, name FROM public.tenants WHERE slug = :'slug'",
            slug=slug)
        self.assertEqual(len(stored), 1, proc.stdout)
        self.assertIn(stored[0][0], proc.stdout)
        self.assertEqual(stored[0][1], 'Cli Co')
        self.assertRegex(self.stack.tenant_schema(stored[0][0]), SCHEMA_RE)

        listing = self.stack.crewctl('tenant', 'list').stdout
        self.assertIn(slug, listing)

        token = self.stack.login(slug, email, 'cli password 1')
        resp = self.stack.request('GET', '/api/v1/agents', host=slug,
                                  token=token)
        self.assertEqual(self.assertJson(resp, 200)['items'], [])

    def test_crewctl_tenant_create_prints_a_generated_password(self):
        slug = unique_slug('gen')
        email = 'owner@%s.test' % slug

        proc = self.stack.crewctl('tenant', 'create', '--name', 'Gen Co',
                                  '--slug', slug, '--admin-email', email)
        lines = [line for line in proc.stdout.splitlines()
                 if line.startswith('admin password: ')]
        self.assertEqual(len(lines), 1, proc.stdout)
        password = lines[0][len('admin password: '):]
        self.assertGreaterEqual(len(password), 12)

        self.stack.login(slug, email, password)

    def test_crewctl_refuses_a_taken_slug(self):
        slug = unique_slug('dup')
        self.assertJson(self.signup(signup_body(slug)), 201)
        before = self.counts()

        proc = self.stack.crewctl('tenant', 'create', '--name', 'Dup',
                                  '--slug', slug, '--admin-email',
                                  'x@dup.test', check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(self.counts(), before)

    def test_crewctl_refuses_an_invalid_slug(self):
        before = self.counts()
        for slug in ('ACME', 'public', 'pg-x', 'a_b'):
            with self.subTest(slug=slug):
                proc = self.stack.crewctl('tenant', 'create', '--name', 'X',
                                          '--slug', slug, '--admin-email',
                                          'x@bad.test', check=False)
                self.assertNotEqual(proc.returncode, 0)
        self.assertEqual(self.counts(), before)


class TenantDeleteTestCase(TenantTestCase):

    def collections_of(self, tenant_id):
        """The names of tenant_id's collections that MongoDB holds."""
        names = {'%s_%s' % (kind, tenant_id) for kind in MONGO_KINDS}
        with mongowire.Client('127.0.0.1', self.stack.mongo_port) as client:
            return {c['name'] for c in client.list_collections('crewd')
                    if c['name'] in names}

    def tenant_with_data(self, prefix):
        """A tenant with an agent and a chat message; its agent's id."""
        t = self.stack.new_tenant(prefix)
        agent = self.assertJson(self.stack.request(
            'POST', '/api/v1/agents', host=t.slug, token=t.token,
            json={'name': 'researcher', 'role': 'Senior researcher',
                  'goal': 'Find the facts'}), 201)
        self.assertJson(self.stack.request(
            'POST', '/api/v1/conversations/%s/messages'
            % crewtest.random_uuid(), host=t.slug, token=t.token,
            json={'role': 'user', 'content': 'hello'}), 201)
        return t, agent['id']

    def assertGone(self, t, schema):
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM public.tenants WHERE id = :'id'",
            id=t.id), '0')
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM public.users WHERE tenant_id = :'id'",
            id=t.id), '0')
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM pg_namespace WHERE nspname = :'schema'",
            schema=schema), '0')
        # Its role went with it (named like the schema).
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM pg_roles WHERE rolname = :'schema'",
            schema=schema), '0')


class TenantDeleteTest(TenantDeleteTestCase):

    def test_delete_removes_everything_of_the_tenant_and_nothing_else(self):
        t, _ = self.tenant_with_data('gone')
        other, other_agent = self.tenant_with_data('stays')
        schema = self.stack.tenant_schema(t.id)
        self.assertEqual(len(self.collections_of(t.id)), 3)

        proc = self.stack.crewctl('tenant', 'delete', t.slug, '--yes')
        self.assertIn('tenant deleted: %s' % t.slug, proc.stdout)
        self.assertIn(t.id, proc.stdout)
        self.assertIn(schema, proc.stdout)
        self.assertIn('users deleted: 1', proc.stdout)
        self.assertIn('mongodb collections: dropped', proc.stdout)

        resp = self.stack.request('GET', '/api/v1/agents', host=t.slug,
                                  token=t.token)
        self.assertProblem(resp, 404)
        self.assertGone(t, schema)
        self.assertEqual(self.collections_of(t.id), set())

        resp = self.stack.request('GET', '/api/v1/agents', host=other.slug,
                                  token=other.token)
        items = self.assertJson(resp, 200)['items']
        self.assertEqual([a['id'] for a in items], [other_agent])
        self.assertEqual(len(self.collections_of(other.id)), 3)

    def test_an_unknown_slug_exits_1_saying_so(self):
        before = self.counts()
        proc = self.stack.crewctl('tenant', 'delete', 'no-such-tenant',
                                  '--yes', check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn('no such tenant: no-such-tenant', proc.stderr)
        self.assertEqual(self.counts(), before)

    def test_without_yes_and_without_a_terminal_nothing_is_deleted(self):
        t = self.stack.new_tenant('kept')
        before = self.counts()

        proc = self.stack.crewctl('tenant', 'delete', t.slug, check=False,
                                  input=t.slug + '\n')
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn('--yes', proc.stderr)
        self.assertEqual(self.counts(), before)
        self.assertEqual(len(self.collections_of(t.id)), 3)
        resp = self.stack.request('GET', '/api/v1/agents', host=t.slug,
                                  token=t.token)
        self.assertJson(resp, 200)

    def test_mongo_drop_refuses_a_tenant_that_exists(self):
        t = self.stack.new_tenant('alive')
        proc = self.stack.crewctl('mongo', 'drop', '--tenant-id', t.id,
                                  check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn('still exists', proc.stderr)
        self.assertEqual(len(self.collections_of(t.id)), 3)


class TenantLifecycleTest(TenantDeleteTestCase):

    def agents_of(self, t, host=None):
        return self.stack.request('GET', '/api/v1/agents',
                                  host=host or t.slug, token=t.token)

    def test_a_suspended_tenant_answers_404_and_keeps_its_data(self):
        t, agent = self.tenant_with_data('paused')
        other = self.stack.new_tenant('running')
        proc = self.stack.crewctl('tenant', 'suspend', t.slug)
        self.assertIn('suspended', proc.stdout)
        for method, path in (('GET', '/api/v1/agents'),
                             ('GET', '/api/v1/users/me'),
                             ('POST', '/api/v1/auth/login')):
            with self.subTest(path=path):
                resp = self.stack.request(method, path, host=t.slug,
                                          token=t.token,
                                          json={} if method == 'POST'
                                          else None)
                self.assertProblem(resp, 404)
        self.assertJson(self.agents_of(other), 200)
        self.assertEqual(self.stack.psql_value(
            'SELECT count(*) FROM :"s".agents',
            s=self.stack.tenant_schema(t.id)), '1')

        again = self.stack.crewctl('tenant', 'suspend', t.slug)
        self.assertIn('was already suspended', again.stdout)
        self.stack.crewctl('tenant', 'resume', t.slug)
        items = self.assertJson(self.agents_of(t), 200)['items']
        self.assertEqual([a['id'] for a in items], [agent])

    def watch_up(self):
        return self.stack.metric('crewd_tenant_watch_up')

    def test_every_worker_forgets_a_changed_tenant_at_once(self):
        """The workers cache tenants; one process per crewd, the tenant
        watch, hears crewctl's announcement and tells them all
        (fcgi/tenant_watch.h).  A watch that dies is replaced, and the
        new one is heard the same way; one that hangs stops being
        trusted."""
        t, _ = self.tenant_with_data('watched')
        for _ in range(20):     # every worker has it cached by now
            self.assertJson(self.agents_of(t), 200)
        watch = self.stack.watch_pids()
        self.assertEqual(len(watch), 1, watch)

        self.stack.crewctl('tenant', 'suspend', t.slug)
        for _ in range(10):
            self.assertProblem(self.agents_of(t), 404)

        self.assertEqual(self.watch_up(), 1)

        os.kill(watch[0], signal.SIGKILL)
        self.assertTrue(wait_for(
            lambda: self.stack.watch_pids() not in ([], watch), 10),
            self.stack.watch_pids())
        self.assertTrue(wait_for(lambda: self.watch_up() == 1, 10))
        self.stack.crewctl('tenant', 'resume', t.slug)
        for _ in range(10):
            self.assertJson(self.agents_of(t), 200)
        self.stack.crewctl('tenant', 'suspend', t.slug)
        for _ in range(10):
            self.assertProblem(self.agents_of(t), 404)

        # A watch that hangs is not trusted after three seconds without
        # a round trip: the workers then read each request's tenant.
        self.stack.crewctl('tenant', 'resume', t.slug)
        for _ in range(10):
            self.assertJson(self.agents_of(t), 200)
        hung = self.stack.watch_pids()[0]
        os.kill(hung, signal.SIGSTOP)
        try:
            self.stack.crewctl('tenant', 'suspend', t.slug)
            self.assertTrue(wait_for(lambda: self.watch_up() == 0, 10))
            for _ in range(10):
                self.assertProblem(self.agents_of(t), 404)
        finally:
            os.kill(hung, signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.watch_up() == 1, 10))

    def test_rename_slug_moves_the_tenant_to_its_new_host(self):
        t, agent = self.tenant_with_data('before')
        new_slug = 'after-' + t.slug.split('-')[-1]
        proc = self.stack.crewctl('tenant', 'rename-slug', t.slug, new_slug)
        self.assertIn('is now %s' % new_slug, proc.stdout)
        self.assertProblem(self.agents_of(t), 404)
        # The token names the tenant's id, not its slug: it still works.
        items = self.assertJson(self.agents_of(t, host=new_slug),
                                200)['items']
        self.assertEqual([a['id'] for a in items], [agent])

    def test_rename_slug_refuses_taken_invalid_and_unknown_slugs(self):
        t = self.stack.new_tenant('name')
        other = self.stack.new_tenant('taken')
        for args, message in (
                ((t.slug, other.slug), 'is taken'),
                ((t.slug, 'Not-A-Slug'), 'slug must be'),
                ((t.slug, 'www'), 'slug is reserved'),
                (('no-such-tenant', 'whatever-new'), 'no such tenant')):
            with self.subTest(args=args):
                proc = self.stack.crewctl('tenant', 'rename-slug', *args,
                                          check=False)
                self.assertEqual(proc.returncode, 1, proc)
                self.assertIn(message, proc.stderr)
        self.assertJson(self.agents_of(t), 200)

    def test_suspend_of_an_unknown_tenant_exits_1(self):
        proc = self.stack.crewctl('tenant', 'suspend', 'no-such-tenant',
                                  check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn('no such tenant: no-such-tenant', proc.stderr)


class TenantDeleteOutageTest(TenantDeleteTestCase):
    # A stack of its own: MongoDB loses its data when it is stopped.
    stack_options = {'workers': 1}

    def test_delete_while_mongodb_is_down_says_what_to_run_later(self):
        t = self.stack.new_tenant('outage')
        schema = self.stack.tenant_schema(t.id)
        self.stack.stop_mongo()
        try:
            proc = self.stack.crewctl('tenant', 'delete', t.slug, '--yes')
        finally:
            self.stack.start_mongo()

        self.assertIn('mongodb collections: NOT dropped', proc.stdout)
        self.assertIn('mongo drop --tenant-id %s' % t.id, proc.stderr)
        self.assertGone(t, schema)
        resp = self.stack.request('GET', '/api/v1/agents', host=t.slug,
                                  token=t.token)
        self.assertProblem(resp, 404)

        proc = self.stack.crewctl('mongo', 'drop', '--tenant-id', t.id)
        self.assertIn('collections dropped', proc.stdout)


class SignUpDisabledTest(TenantTestCase):
    stack_options = {'signup_enabled': False, 'workers': 1}

    def test_signup_answers_403_when_disabled(self):
        before = self.counts()
        resp = self.signup(signup_body(unique_slug()))
        self.assertProblem(resp, 403)
        self.assertEqual(self.counts(), before)

    def test_crewctl_creates_tenants_when_signup_is_disabled(self):
        slug = unique_slug('closed')
        email = 'owner@%s.test' % slug
        pwfile = self.write_password_file('pw-' + slug, 'closed password')
        self.stack.crewctl('tenant', 'create', '--name', 'Closed Co',
                           '--slug', slug, '--admin-email', email,
                           '--admin-password-file', pwfile)
        self.stack.login(slug, email, 'closed password')


class OpenApiTest(TenantTestCase):

    def test_the_document_is_served_and_lists_the_routes(self):
        t = self.stack.new_tenant('openapi')
        resp = self.stack.request('GET', '/api/v1/openapi.json', host=t.slug)
        doc = self.assertJson(resp, 200)
        self.assertEqual(doc['openapi'], '3.1.0')
        self.assertIn('post', doc['paths']['/api/v1/agents'])
        self.assertIn('put', doc['paths']['/api/v1/crews/{id}/agents'])
        # Hosts as a client reaches them, port included.
        self.assertEqual(doc['paths']['/api/v1/tenants']['servers'][0]['url'],
                         'https://localhost:%d' % self.stack.https_port)

    def test_the_document_is_served_on_the_platform_host_too(self):
        doc = self.assertJson(
            self.stack.request('GET', '/api/v1/openapi.json'), 200)
        self.assertEqual(doc['openapi'], '3.1.0')

    def test_the_document_is_not_served_for_an_unknown_tenant(self):
        resp = self.stack.request('GET', '/api/v1/openapi.json',
                                  host='no-such-tenant')
        self.assertProblem(resp, 404)


if __name__ == '__main__':
    crewtest.main()
