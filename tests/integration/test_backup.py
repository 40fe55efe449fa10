"""Per-tenant backup and restore: crewctl tenant backup and restore.

A tenant with every kind of data is backed up, restored under a new slug
and read back through the API: every list is the same, field by field,
once the ids that must differ (the tenant's and its users') are set
aside; its users log in with their old passwords; the original tenant is
unchanged.  Then --replace after changes, and the archives a restore
refuses (damaged, truncated, another schema version, a taken slug, a
foreign master key) with nothing changed.
"""

import io
import json
import os
import re
import stat
import subprocess
import tarfile
import tempfile

import crewtest
import mongowire
from crewtest import StackTestCase, random_uuid, wait_for

PASSWORD = 'correct horse battery staple'
TOOL_SCHEMA = {'type': 'object',
               'properties': {'query': {'type': 'string'}},
               'required': ['query']}
# What JSON can hold that a careless copy would lose: control characters
# (COPY escapes them), quotes and backslashes, non-ASCII, member names
# MongoDB refuses (the audit trail escapes them), big and fractional
# numbers.
AWKWARD_CONFIG = {
    'temperature': 0.7,
    'big': 12345678901234,
    'text': 'tab\there\nnext line "quoted" \\ back',
    'unicode': 'caf\u00e9 \u2615',
    '$weird.key': {'a.b': [1, 2.5, None, True, 'x']},
}
LIST_PATHS = ['/api/v1/users', '/api/v1/agents', '/api/v1/llm-providers',
              '/api/v1/crews', '/api/v1/flows', '/api/v1/tools',
              '/api/v1/executions', '/api/v1/audit-logs']


def new_slug(prefix):
    return '%s-%s' % (prefix, os.urandom(4).hex())


class Tenant:
    """A tenant under test: slug, id, admin token, and what was made."""

    def __init__(self, stack, prefix):
        t = stack.new_tenant(prefix)
        self.stack = stack
        self.slug = t.slug
        self.id = t.id
        self.email = t.email
        self.token = t.token
        self.schema = stack.tenant_schema(t.id)
        self.executions = []
        self.conversations = []
        self.crews = []
        self.users = {}                 # email -> (id, password, role)

    def call(self, method, path, token=None, expect=None, **kwargs):
        resp = self.stack.request(method, path, host=self.slug,
                                  token=token or self.token, **kwargs)
        if expect is not None and resp.status != expect:
            raise AssertionError('%s %s: %r' % (method, path, resp))
        return resp

    def add_user(self, role, email=None):
        email = email or '%s-%s@%s.test' % (role, os.urandom(3).hex(),
                                            self.slug)
        password = 'pw-%s-%s' % (role, os.urandom(6).hex())
        body = self.call('POST', '/api/v1/users', expect=201, json={
            'email': email, 'password': password, 'role': role,
            'full_name': 'The %s' % role}).json()
        self.users[email] = (body['id'], password, role)
        return email

    def login(self, email, password):
        return self.stack.request('POST', '/api/v1/auth/login',
                                  host=self.slug,
                                  json={'email': email,
                                        'password': password})

    def token_of(self, email):
        resp = self.login(email, self.users[email][1])
        if resp.status != 200:
            raise AssertionError('login of %s: %r' % (email, resp))
        return resp.json()['access_token']

    def wait_outbox_empty(self):
        def empty():
            return self.stack.psql_value(
                'SELECT count(*) FROM :"schema".audit_outbox',
                schema=self.schema) == '0'
        if not wait_for(empty, 20):
            raise AssertionError('the audit outbox of %s was not shipped'
                                 % self.slug)


def fill(tenant):
    """Every kind of data: users of each role (and one who left), an LLM
    provider with credentials, agents, crews with members, a flow, tools,
    executions in every state, execution logs, chat messages, a renamed
    tenant, a TTL of its own and audit entries shipped to MongoDB."""
    stack = tenant.stack
    tenant.call('PATCH', '/api/v1/tenant', expect=200,
                json={'name': 'Renamed %s' % tenant.slug})
    stack.crewctl('mongo', 'ttl', '--tenant', tenant.slug,
                  '--execution-logs', '7')
    member = tenant.add_user('member')
    tenant.add_user('viewer')
    tenant.add_user('admin')

    provider = tenant.call('POST', '/api/v1/llm-providers', expect=201, json={
        'name': 'openai', 'provider_type': 'openai',
        'config': {'model': 'gpt-4o', 'base_url': 'https://api.example'},
        'credentials': {'api_key': 'sk-%s' % os.urandom(8).hex()}}).json()
    tenant.call('POST', '/api/v1/llm-providers', expect=201, json={
        'name': 'spare', 'provider_type': 'openai', 'priority': 5,
        'config': {'model': 'small'}})
    agents = [tenant.call('POST', '/api/v1/agents', expect=201, json={
        'name': 'agent %d' % i, 'role': 'Researcher', 'goal': 'Find facts',
        'backstory': 'Line one\nline two', 'allow_delegation': i == 0,
        'llm_provider_id': provider['id'] if i == 0 else None,
        'config': AWKWARD_CONFIG}).json() for i in range(3)]
    for i in range(2):
        crew = tenant.call('POST', '/api/v1/crews', expect=201, json={
            'name': 'crew %d' % i, 'process': 'hierarchical' if i else
            'sequential', 'description': 'A crew'}).json()
        tenant.call('PUT', '/api/v1/crews/%s/agents' % crew['id'],
                    expect=200, json=[
                        {'agent_id': agents[j]['id'], 'position': j}
                        for j in range(i + 2)])
        tenant.crews.append(crew['id'])
    flow = tenant.call('POST', '/api/v1/flows', expect=201, json={
        'name': 'publish', 'description': 'research, then write',
        'definition': {
            'nodes': [{'id': 'research', 'type': 'crew',
                       'crew_id': tenant.crews[0]},
                      {'id': 'write', 'type': 'agent',
                       'agent_id': agents[1]['id'],
                       'config': {'task': 'Write it up'}}],
            'edges': [{'from': 'research', 'to': 'write'}]}}).json()
    tenant.call('POST', '/api/v1/flows', expect=201, json={
        'name': 'idle', 'is_active': False,
        'definition': {'nodes': [], 'edges': []}})
    for i in range(2):
        tenant.call('POST', '/api/v1/tools', expect=201, json={
            'name': 'search %d' % i, 'description': 'Searches',
            'docker_image': 'ghcr.io/acme/web-search:1.%d' % i,
            'schema': TOOL_SCHEMA, 'is_active': i == 0})

    # Executions in every state: running (claimed), succeeded, failed,
    # cancelled and pending.
    def execute(token=None, inputs=None):
        body = tenant.call('POST', '/api/v1/flows/%s/executions' % flow['id'],
                           token=token, expect=202,
                           json={'inputs': inputs or {'n': 1}}).json()
        tenant.executions.append(body['id'])
        return body['id']

    execute(inputs={'topic': 'running'})
    stack.crewctl('execution', 'claim', '--tenant', tenant.slug)
    for status, error in (('succeeded', None), ('failed', 'it broke')):
        stack.psql(
            "UPDATE :\"schema\".executions SET status = :'status',"
            " started_at = now(), completed_at = now(), updated_at = now(),"
            " outputs = '{\"answer\": 42}', error = nullif(:'error', '')"
            " WHERE id = :'id'", schema=tenant.schema, status=status,
            error=error or '', id=execute(inputs={'topic': status}))
    tenant.call('POST', '/api/v1/executions/%s/cancel' % execute(),
                expect=200, json={})
    execute(token=tenant.token_of(member), inputs={'by': 'member'})

    for execution in tenant.executions[:3]:
        tenant.call('POST', '/api/v1/executions/%s/logs' % execution,
                    expect=201, json=[
                        {'level': level, 'message': 'step %s' % level,
                         'node_id': 'research',
                         'metadata': {'tokens': 12, 'ratio': 0.25,
                                      'tags': ['a', 'b']}}
                        for level in ('debug', 'info', 'warning', 'error')])
    for i in range(2):
        conversation = random_uuid()
        tenant.conversations.append(conversation)
        for role in ('system', 'user', 'assistant', 'tool'):
            tenant.call('POST', '/api/v1/conversations/%s/messages'
                        % conversation, expect=201, json={
                            'role': role, 'content': '%s says hi' % role,
                            'metadata': {'turn': i},
                            'tool_calls': [{'name': 'search',
                                            'args': {'q': 'x'}}]
                            if role == 'assistant' else []})

    # A user who acted and left: their id lives on in an execution, the
    # logs' audit entries and the audit entry of their deletion.
    leaver = tenant.add_user('member')
    leaver_token = tenant.token_of(leaver)
    tenant.leaver_id = tenant.users[leaver][0]
    tenant.leaver_execution = execute(token=leaver_token,
                                      inputs={'by': 'leaver'})
    tenant.call('POST', '/api/v1/executions/%s/logs'
                % tenant.leaver_execution, token=leaver_token, expect=201,
                json={'level': 'info', 'message': 'leaving soon'})
    tenant.call('POST', '/api/v1/conversations/%s/messages'
                % tenant.conversations[0], token=leaver_token, expect=201,
                json={'role': 'user', 'content': 'bye'})
    tenant.call('DELETE', '/api/v1/users/%s' % tenant.leaver_id,
                expect=204)
    del tenant.users[leaver]
    tenant.wait_outbox_empty()


def read_all(tenant, path, token=None):
    """Every item of a list, following the cursors."""
    items, cursor = [], None
    for _ in range(100):
        query = '?limit=100' + ('&cursor=%s' % cursor if cursor else '')
        body = tenant.call('GET', path + query, token=token,
                           expect=200).json()
        items += body['items']
        cursor = body.get('next_cursor')
        if not cursor:
            return items
    raise AssertionError('%s does not end' % path)


def snapshot(tenant, token=None):
    """What the API shows of the tenant: every list, each crew's members,
    each execution's logs, each conversation's messages."""
    view = {'tenant': tenant.call('GET', '/api/v1/tenant', token=token,
                                  expect=200).json()}
    for path in LIST_PATHS:
        view[path] = read_all(tenant, path, token)
    for crew in tenant.crews:
        path = '/api/v1/crews/%s/agents' % crew
        view[path] = tenant.call('GET', path, token=token, expect=200).json()
    for execution in tenant.executions:
        view['logs %s' % execution] = read_all(
            tenant, '/api/v1/executions/%s/logs' % execution, token)
    for conversation in tenant.conversations:
        view['messages %s' % conversation] = read_all(
            tenant, '/api/v1/conversations/%s/messages' % conversation,
            token)
    return view


def replace_ids(value, names):
    if isinstance(value, dict):
        return {k: replace_ids(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_ids(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def rewrite_archive(path, out, change):
    """Writes to out the archive at path with change(members) applied to
    its {name: bytes}, the manifest's sizes and digests made to match."""
    import hashlib
    with tarfile.open(path) as tar:
        names = tar.getnames()
        members = {n: tar.extractfile(n).read() for n in names}
    change(members)
    manifest = json.loads(members['manifest.json'])
    for entry in manifest['members']:
        data = members[entry['name']]
        entry['size'] = len(data)
        entry['sha256'] = hashlib.sha256(data).hexdigest()
    members['manifest.json'] = (json.dumps(manifest) + '\n').encode()
    with tarfile.open(out, 'w', format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(members[name]))


class BackupTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix='crewd-backup-test-')

    @classmethod
    def crewctl(cls, *args, conf=None):
        """crewctl with the stack's configuration (or conf); its exit
        status is the caller's to check."""
        return subprocess.run(
            [cls.stack.tools['crewctl'], '-c', conf or cls.stack.conf_path]
            + list(args), capture_output=True, text=True, timeout=120)

    @classmethod
    def backup(cls, slug, name=None):
        path = os.path.join(cls.dir, name or '%s.tar' % slug)
        proc = cls.crewctl('tenant', 'backup', slug, path)
        if proc.returncode != 0:
            raise AssertionError('backup of %s: %s' % (slug, proc.stderr))
        return path

    @classmethod
    def restore(cls, path, *args, code=0, conf=None):
        proc = cls.crewctl('tenant', 'restore', path, *args, conf=conf)
        if proc.returncode != code:
            raise AssertionError('restore %s exited with %d, not %d: %s%s'
                                 % (' '.join(args), proc.returncode, code,
                                    proc.stdout, proc.stderr))
        return proc

    def platform_state(self):
        """What a refused restore must leave as it was."""
        state = self.stack.psql(
            "SELECT (SELECT count(*) FROM public.tenants),"
            " (SELECT count(*) FROM public.users),"
            " (SELECT count(*) FROM pg_namespace"
            "  WHERE nspname LIKE 'tenant\\_%'),"
            " (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'tenant\\_%'),"
            " (SELECT string_agg(slug, ',' ORDER BY slug)"
            "  FROM public.tenants)")
        with mongowire.Client('127.0.0.1', self.stack.mongo_port) as client:
            collections = sorted(c['name'] for c in
                                 client.list_collections('crewd'))
        return state, collections


class RoundTripTest(BackupTestCase):
    """One rich tenant, backed up and restored under a new slug."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.source = Tenant(cls.stack, 'src')
        fill(cls.source)
        cls.before = snapshot(cls.source)
        cls.archive = os.path.join(cls.dir, 'source.tar')
        proc = cls.crewctl('tenant', 'backup', cls.source.slug, cls.archive)
        if proc.returncode != 0:
            raise AssertionError(proc.stderr)
        cls.backup_output = proc.stdout
        cls.copy_slug = new_slug('copy')
        cls.restore_output = cls.restore(cls.archive, '--slug',
                                         cls.copy_slug).stdout
        cls.copy = cls.restored_tenant()

    @classmethod
    def restored_tenant(cls):
        copy = Tenant.__new__(Tenant)
        copy.stack = cls.stack
        copy.slug = cls.copy_slug
        copy.id = cls.stack.psql_value(
            "SELECT id FROM public.tenants WHERE slug = :'slug'",
            slug=cls.copy_slug)
        copy.schema = cls.stack.tenant_schema(copy.id)
        copy.email = cls.source.email
        copy.users = dict(cls.source.users)
        copy.token = cls.stack.login(cls.copy_slug, email=cls.source.email)
        copy.executions = cls.source.executions
        copy.conversations = cls.source.conversations
        copy.crews = cls.source.crews
        return copy

    def id_names(self, tenant, users, leaver_id):
        names = {tenant.id: 'TENANT', leaver_id: 'USER leaver'}
        for user in users:
            names[user['id']] = 'USER %s' % user['email']
        return names

    def test_the_archive_holds_every_member_with_mode_0600(self):
        mode = stat.S_IMODE(os.stat(self.archive).st_mode)
        self.assertEqual(mode, 0o600)
        with tarfile.open(self.archive) as tar:
            self.assertEqual(tar.getnames(), [
                'schema.dump', 'tenant.jsonl', 'users.jsonl',
                'execution_logs.jsonl', 'chat_messages.jsonl',
                'audit_logs.jsonl', 'manifest.json'])
        leftovers = [n for n in os.listdir(self.dir)
                     if n.endswith('.tmp') or n.startswith('.crewd-backup-')]
        self.assertEqual(leftovers, [])

    def test_the_manifest_names_versions_the_tenant_and_checksums(self):
        import hashlib
        with tarfile.open(self.archive) as tar:
            manifest = json.loads(tar.extractfile('manifest.json').read())
            data = {n: tar.extractfile(n).read() for n in tar.getnames()}
        self.assertEqual(manifest['format'], 'crewd-tenant-backup')
        self.assertEqual(manifest['format_version'], 1)
        self.assertRegex(manifest['crewd_version'], r'^\d+\.\d+')
        self.assertEqual(manifest['schema_version'], int(self.stack.psql_value(
            'SELECT max(version) FROM tenant_template.schema_migrations')))
        self.assertEqual(manifest['postgresql']['server_version_num'],
                         int(self.stack.psql_value('SHOW server_version_num')))
        self.assertEqual(manifest['tenant'], {
            'id': self.source.id, 'slug': self.source.slug,
            'name': 'Renamed %s' % self.source.slug,
            'schema': self.source.schema,
            'created_at': self.before['tenant']['created_at']})
        self.assertTimestamp(manifest['created_at'])
        self.assertEqual(manifest['counts']['users'], 4)
        self.assertEqual(manifest['counts']['execution_logs'], 13)
        self.assertEqual(manifest['counts']['chat_messages'], 9)
        listed = {m['name']: m for m in manifest['members']}
        self.assertEqual(set(listed), set(data) - {'manifest.json'})
        for name, entry in listed.items():
            self.assertEqual(entry['size'], len(data[name]), name)
            self.assertEqual(entry['sha256'],
                             hashlib.sha256(data[name]).hexdigest(), name)

    def test_users_and_documents_are_json_lines(self):
        with tarfile.open(self.archive) as tar:
            users = tar.extractfile('users.jsonl').read().decode()
            logs = tar.extractfile('execution_logs.jsonl').read().decode()
        rows = [json.loads(line) for line in users.splitlines()]
        self.assertEqual(sorted(r['email'] for r in rows),
                         sorted([self.source.email] + list(self.source.users)))
        self.assertTrue(all(r['password_hash'].startswith('$argon2id$')
                            for r in rows))
        docs = [json.loads(line) for line in logs.splitlines()]
        # Canonical Extended JSON: the types survive.
        self.assertEqual(set(docs[0]['_id']), {'$oid'})
        self.assertEqual(set(docs[0]['timestamp']), {'$date'})
        # (The logs with metadata, wherever they are: documents come in
        # _id order, and ids made by two workers in one second sort by
        # each worker's random part, not by time.)
        counted = [d for d in docs if 'metadata' in d]
        self.assertEqual(len(counted), 12, docs)
        for doc in counted:
            self.assertEqual(doc['metadata']['tokens'], {'$numberInt': '12'})
            self.assertEqual(doc['metadata']['ratio'],
                             {'$numberDouble': '0.25'})

    def test_every_list_reads_back_the_same_under_the_new_slug(self):
        after = snapshot(self.copy)
        # The leaver's new id: their execution, which keeps its id, names
        # it.
        leaver_copy = [e['user_id'] for e in after['/api/v1/executions']
                       if e['id'] == self.source.leaver_execution][0]
        before = replace_ids(self.before, self.id_names(
            self.source, self.before['/api/v1/users'],
            self.source.leaver_id))
        restored = replace_ids(after, self.id_names(
            self.copy, after['/api/v1/users'], leaver_copy))
        for key in before:
            if key == 'tenant':
                continue
            self.assertEqual(restored[key], before[key], key)
        self.assertGreater(len(after['/api/v1/audit-logs']), 30)

    def test_the_tenant_and_user_ids_are_new_and_the_old_ones_are_gone(self):
        after = snapshot(self.copy)
        self.assertNotEqual(self.copy.id, self.source.id)
        self.assertNotEqual(self.copy.schema, self.source.schema)
        old = {u['id'] for u in self.before['/api/v1/users']}
        new = {u['id'] for u in after['/api/v1/users']}
        self.assertEqual(len(new), 4)
        self.assertEqual(old & new, set())
        text = json.dumps(after)
        for gone in old | {self.source.id, self.source.leaver_id}:
            self.assertNotIn(gone, text)
        for item in after['/api/v1/agents'] + after['/api/v1/executions']:
            self.assertEqual(item['tenant_id'], self.copy.id)

    def test_the_tenant_keeps_its_settings(self):
        tenant = self.copy.call('GET', '/api/v1/tenant', expect=200).json()
        self.assertEqual(tenant['id'], self.copy.id)
        self.assertEqual(tenant['slug'], self.copy_slug)
        self.assertEqual(tenant['name'], 'Renamed %s' % self.source.slug)
        self.assertEqual(tenant['is_active'], True)
        self.assertEqual(tenant['audit_reads'], False)
        self.assertEqual(self.stack.psql(
            "SELECT execution_log_ttl_days, chat_message_ttl_days,"
            " mongo_provisioned_at IS NOT NULL FROM public.tenants"
            " WHERE id = :'id'", id=self.copy.id), [('7', '30', 't')])

    def test_the_restored_users_log_in_with_their_old_passwords(self):
        for email, (_, password, role) in self.source.users.items():
            resp = self.copy.login(email, password)
            self.assertEqual(resp.status, 200, (email, resp))
            token = resp.json()['access_token']
            me = self.copy.call('GET', '/api/v1/users/me', token=token,
                                expect=200).json()
            self.assertEqual((me['email'], me['role']), (email, role))
        viewer = [e for e, u in self.source.users.items()
                  if u[2] == 'viewer'][0]
        resp = self.copy.call('POST', '/api/v1/agents',
                              token=self.copy.token_of(viewer),
                              json={'name': 'a', 'role': 'r', 'goal': 'g'})
        self.assertEqual(resp.status, 403, resp)

    def test_a_token_of_the_original_is_refused_by_the_copy(self):
        resp = self.copy.call('GET', '/api/v1/agents',
                              token=self.source.token)
        self.assertEqual(resp.status, 401, resp)

    def test_the_original_tenant_is_unchanged(self):
        self.assertEqual(snapshot(self.source), self.before)

    def test_the_credentials_are_sealed_for_the_new_tenant(self):
        out = self.stack.crewctl('keys', 'check').stdout
        line = [l for l in out.splitlines()
                if l.startswith(self.copy_slug + ' ')][0]
        self.assertIn('credentials=1 open=1 failed=0', line)
        self.assertIn('1 LLM provider credential(s) sealed again',
                      self.restore_output)
        providers = read_all(self.copy, '/api/v1/llm-providers')
        self.assertEqual(sorted(p['has_credentials'] for p in providers),
                         [False, True])

    def test_the_collections_are_provisioned_with_their_indexes(self):
        inspected = self.stack.mongo_inspect(self.copy_slug)
        self.assertFalse(inspected['pending'])
        original = self.stack.mongo_inspect(self.source.slug)
        for kind in ('execution_logs', 'chat_messages', 'audit_logs'):
            mine = inspected['collections'][kind]
            self.assertTrue(mine['exists'], kind)
            self.assertEqual(mine['name'], '%s_%s' % (kind, self.copy.id))
            self.assertEqual(mine['indexes'],
                             original['collections'][kind]['indexes'])
            self.assertEqual(mine['options'],
                             original['collections'][kind]['options'])

    def test_the_copy_lives_on_its_own(self):
        agent = self.copy.call('POST', '/api/v1/agents', expect=201, json={
            'name': 'new', 'role': 'r', 'goal': 'g'}).json()
        self.assertEqual(agent['tenant_id'], self.copy.id)
        self.assertEqual(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".agents WHERE id = :\'id\'',
            schema=self.source.schema, id=agent['id']), '0')
        self.copy.call('DELETE', '/api/v1/agents/%s' % agent['id'],
                       expect=204)
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM pg_roles WHERE rolname = :'schema'",
            schema=self.copy.schema), '1')

    def test_the_commands_report_what_they_did(self):
        self.assertIn('tenant %s (%s) backed up to %s' % (
            self.source.slug, self.source.id, self.archive),
            self.backup_output)
        self.assertIn('schema version 3, 4 user(s), 13 execution log(s), '
                      '9 chat message(s)', self.backup_output)
        self.assertIn('restored %s as tenant %s (id %s' % (
            self.archive, self.copy_slug, self.copy.id), self.restore_output)


class ReplaceTest(BackupTestCase):
    """--replace: the tenant is put back as it was, after changes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = t = Tenant(cls.stack, 'rep')
        cls.member = t.add_user('member')
        provider = t.call('POST', '/api/v1/llm-providers', expect=201, json={
            'name': 'p', 'provider_type': 'openai', 'config': {'m': 1},
            'credentials': {'api_key': 'sk-replace'}}).json()
        cls.agent = t.call('POST', '/api/v1/agents', expect=201, json={
            'name': 'kept', 'role': 'r', 'goal': 'g',
            'llm_provider_id': provider['id']}).json()
        cls.tool = t.call('POST', '/api/v1/tools', expect=201, json={
            'name': 'tool', 'docker_image': 'alpine:3',
            'schema': TOOL_SCHEMA}).json()
        crew = t.call('POST', '/api/v1/crews', expect=201,
                      json={'name': 'crew'}).json()
        t.crews.append(crew['id'])
        t.call('PUT', '/api/v1/crews/%s/agents' % crew['id'], expect=200,
               json=[{'agent_id': cls.agent['id'], 'position': 0}])
        flow = t.call('POST', '/api/v1/flows', expect=201, json={
            'name': 'f', 'definition': {'nodes': [
                {'id': 'a', 'type': 'agent', 'agent_id': cls.agent['id']}],
                'edges': []}}).json()
        cls.execution = t.call('POST', '/api/v1/flows/%s/executions'
                               % flow['id'], expect=202,
                               json={'inputs': {}}).json()
        t.executions.append(cls.execution['id'])
        t.call('POST', '/api/v1/executions/%s/logs' % cls.execution['id'],
               expect=201, json={'level': 'info', 'message': 'kept'})
        t.conversations.append(random_uuid())
        t.call('POST', '/api/v1/conversations/%s/messages'
               % t.conversations[0], expect=201,
               json={'role': 'user', 'content': 'kept'})
        t.wait_outbox_empty()
        cls.before = snapshot(t)
        cls.expected = dict(cls.before, tenant=dict(cls.before['tenant']))
        del cls.expected['tenant']['updated_at']
        cls.archive = cls.backup(t.slug)
        cls.member_token = t.token_of(cls.member)

        # Changes after the backup, all to be undone.
        t.call('PATCH', '/api/v1/tenant', expect=200,
               json={'name': 'changed'})
        t.call('PATCH', '/api/v1/agents/%s' % cls.agent['id'], expect=200,
               json={'name': 'changed'})
        t.call('DELETE', '/api/v1/tools/%s' % cls.tool['id'], expect=204)
        t.call('POST', '/api/v1/agents', expect=201,
               json={'name': 'added', 'role': 'r', 'goal': 'g'})
        cls.late = t.add_user('admin')
        t.call('POST', '/api/v1/executions/%s/logs' % cls.execution['id'],
               expect=201, json={'level': 'error', 'message': 'added'})
        t.call('POST', '/api/v1/conversations/%s/messages'
               % t.conversations[0], expect=201,
               json={'role': 'assistant', 'content': 'added'})
        t.wait_outbox_empty()
        cls.changed = snapshot(t)
        cls.output = cls.restore(cls.archive, '--replace').stdout
        t.token = cls.stack.login(t.slug, email=t.email)

    def without_tenant_updated_at(self, view):
        """The restore changes the tenant's row (it is suspended while
        MongoDB is restored), so its updated_at moves on; all else is as
        it was."""
        view = dict(view)
        view['tenant'] = dict(view['tenant'])
        self.assertGreater(view['tenant'].pop('updated_at'),
                           self.before['tenant']['updated_at'])
        return view

    def test_changes_since_the_backup_are_undone(self):
        self.assertNotEqual(self.changed, self.before)
        self.assertEqual(self.without_tenant_updated_at(
            snapshot(self.tenant)), self.expected)

    def test_it_keeps_the_tenant_id_slug_schema_and_user_ids(self):
        self.assertIn('restored %s as tenant %s (id %s, schema %s), '
                      'replacing its data' % (
                          self.archive, self.tenant.slug, self.tenant.id,
                          self.tenant.schema), self.output)
        self.assertEqual(self.stack.tenant_schema(self.tenant.id),
                         self.tenant.schema)

    def test_tokens_issued_before_the_restore_are_refused(self):
        resp = self.tenant.call('GET', '/api/v1/agents',
                                token=self.member_token)
        self.assertEqual(resp.status, 401, resp)
        token = self.tenant.token_of(self.member)
        self.tenant.call('GET', '/api/v1/agents', token=token, expect=200)

    def test_a_user_made_after_the_backup_is_gone(self):
        resp = self.tenant.login(self.late, self.tenant.users[self.late][1])
        self.assertEqual(resp.status, 401, resp)

    def test_the_tenant_is_served_with_its_collections_and_credentials(self):
        self.assertEqual(self.stack.psql(
            "SELECT is_active, mongo_provisioned_at IS NOT NULL"
            " FROM public.tenants WHERE id = :'id'", id=self.tenant.id),
            [('t', 't')])
        self.assertFalse(self.stack.mongo_inspect(self.tenant.slug)['pending'])
        out = self.stack.crewctl('keys', 'check').stdout
        line = [l for l in out.splitlines()
                if l.startswith(self.tenant.slug + ' ')][0]
        self.assertIn('credentials=1 open=1 failed=0', line)

    def test_a_second_replace_gives_the_same(self):
        self.restore(self.archive, '--replace')
        self.tenant.token = self.stack.login(self.tenant.slug,
                                             email=self.tenant.email)
        self.assertEqual(self.without_tenant_updated_at(
            snapshot(self.tenant)), self.expected)


class OutboxTest(BackupTestCase):
    """Audit entries still in the outbox at the backup are shipped by the
    copy, with the copy's ids."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = t = Tenant(cls.stack, 'box')
        cls.member = t.add_user('member')
        cls.member_id = t.users[cls.member][0]
        flow = t.call('POST', '/api/v1/flows', expect=201, json={
            'name': 'f', 'definition': {'nodes': [], 'edges': []}}).json()
        t.wait_outbox_empty()

        # The shipper's lock on the tenant, held by another session, keeps
        # the next entries in the outbox.
        holder = subprocess.Popen(
            [cls.stack.tools['psql'], '-X', '-q', '-h', cls.stack.pg_sock,
             '-p', str(cls.stack.pg_port), '-U', 'crewd_owner', '-d',
             'crewd', '-c', "SELECT pg_advisory_xact_lock(hashtext("
             "'crewd.audit.%s')), pg_sleep(120)" % t.id],
            env=dict(os.environ, PGAPPNAME='hold-shipper'),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: cls.stack.psql_value(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted") != '0', 10)
            t.call('PATCH', '/api/v1/users/%s' % cls.member_id, expect=200,
                   json={'full_name': 'Renamed member'})
            cls.execution = t.call(
                'POST', '/api/v1/flows/%s/executions' % flow['id'],
                token=t.token_of(cls.member), expect=202,
                json={'inputs': {}}).json()
            cls.waiting = int(cls.stack.psql_value(
                'SELECT count(*) FROM :"schema".audit_outbox',
                schema=t.schema))
            cls.archive = cls.backup(t.slug)
        finally:
            cls.stack.psql("SELECT pg_terminate_backend(pid)"
                           " FROM pg_stat_activity"
                           " WHERE application_name = 'hold-shipper'",
                           superuser=True)
            holder.wait(30)
        cls.slug = new_slug('boxcopy')
        cls.restore(cls.archive, '--slug', cls.slug)
        cls.copy_id = cls.stack.psql_value(
            "SELECT id FROM public.tenants WHERE slug = :'slug'",
            slug=cls.slug)
        cls.copy_schema = cls.stack.tenant_schema(cls.copy_id)

    def test_the_entries_are_shipped_with_the_new_ids(self):
        self.assertEqual(self.waiting, 2)
        wait_for(lambda: self.stack.psql_value(
            'SELECT count(*) FROM :"schema".audit_outbox',
            schema=self.copy_schema) == '0', 20)
        token = self.stack.login(self.slug, email=self.tenant.email)
        entries = self.stack.request('GET', '/api/v1/audit-logs?limit=100',
                                     host=self.slug, token=token).json()
        new_member = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'"
            " AND email = :'e'", t=self.copy_id, e=self.member)
        update = [e for e in entries['items']
                  if e['resource_type'] == 'user' and e['action'] == 'update']
        run = [e for e in entries['items']
               if e['resource_type'] == 'execution']
        self.assertEqual(len(update), 1)
        self.assertEqual(update[0]['resource_id'], new_member)
        self.assertEqual(update[0]['changes']['after']['id'], new_member)
        self.assertEqual(update[0]['changes']['after']['tenant_id'],
                         self.copy_id)
        self.assertEqual(update[0]['changes']['after']['full_name'],
                         'Renamed member')
        self.assertEqual(len(run), 1)
        self.assertEqual(run[0]['user_id'], new_member)
        self.assertEqual(run[0]['resource_id'], self.execution['id'])
        self.assertEqual(run[0]['changes']['after']['user_id'], new_member)
        text = json.dumps(entries)
        for old in (self.tenant.id, self.member_id):
            self.assertNotIn(old, text)


class RefusalTest(BackupTestCase):
    """What a restore refuses, and that it then changes nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = t = Tenant(cls.stack, 'ref')
        t.call('POST', '/api/v1/llm-providers', expect=201, json={
            'name': 'p', 'provider_type': 'openai', 'config': {},
            'credentials': {'api_key': 'sk-refuse'}})
        t.call('POST', '/api/v1/agents', expect=201,
               json={'name': 'a', 'role': 'r', 'goal': 'g'})
        t.wait_outbox_empty()
        cls.archive = cls.backup(t.slug)

    def assertRefused(self, path, *args, message, code=1):
        before = self.platform_state()
        proc = self.restore(path, *args, code=code)
        self.assertRegex(proc.stderr, message)
        self.assertEqual(self.platform_state(), before)
        return proc

    def changed_copy(self, change, name):
        out = os.path.join(self.dir, name)
        rewrite_archive(self.archive, out, change)
        return out

    def test_a_damaged_member_is_refused(self):
        damaged = os.path.join(self.dir, 'damaged.tar')
        with open(self.archive, 'rb') as f:
            data = bytearray(f.read())
        with tarfile.open(self.archive) as tar:
            offset = tar.getmember('users.jsonl').offset_data
        data[offset + 10] ^= 0x01
        with open(damaged, 'wb') as f:
            f.write(data)
        self.assertRefused(damaged, '--slug', new_slug('dmg'),
                           message='damaged: member users.jsonl does not '
                           'match the SHA-256')

    def test_a_truncated_archive_is_refused(self):
        truncated = os.path.join(self.dir, 'truncated.tar')
        with open(self.archive, 'rb') as f:
            data = f.read()
        for size in (len(data) // 2, len(data) - 10240 + 512, 700):
            with open(truncated, 'wb') as f:
                f.write(data[:size])
            self.assertRefused(truncated, '--slug', new_slug('cut'),
                               message='truncated|lacks member|no manifest')

    def test_an_older_schema_version_is_refused_naming_the_migration(self):
        def older(members):
            manifest = json.loads(members['manifest.json'])
            manifest['schema_version'] = 2
            members['manifest.json'] = json.dumps(manifest).encode()
        path = self.changed_copy(older, 'older.tar')
        proc = self.assertRefused(
            path, '--slug', new_slug('old'),
            message='at version 2 and tenant_template at version 3')
        self.assertIn('crewctl migrate --to 2', proc.stderr)

    def test_a_newer_schema_version_is_refused(self):
        def newer(members):
            manifest = json.loads(members['manifest.json'])
            manifest['schema_version'] = 99
            members['manifest.json'] = json.dumps(manifest).encode()
        path = self.changed_copy(newer, 'newer.tar')
        proc = self.assertRefused(path, '--slug', new_slug('new'),
                                  message='at version 99')
        self.assertIn('knows tenant migrations up to version 3', proc.stderr)

    def test_a_taken_slug_is_refused(self):
        self.assertRefused(self.archive, '--slug', self.tenant.slug,
                           message='the slug "%s" is taken'
                           % self.tenant.slug)

    def test_a_slug_sign_up_refuses_is_refused(self):
        for slug in ('admin', 'Upper', '-edge', 'x' * 64, 'xn--abc'):
            self.assertRefused(self.archive, '--slug', slug,
                               message='--slug')

    def test_slug_or_replace_is_required_and_not_both(self):
        for args in ((), ('--slug', 'a-b', '--replace'), ('--bogus',)):
            proc = self.crewctl('tenant', 'restore', self.archive, *args)
            self.assertEqual(proc.returncode, 2, proc.stderr)
            self.assertIn('usage:', proc.stderr)

    def test_a_document_its_collection_refuses_is_refused(self):
        def bad_document(members):
            members['audit_logs.jsonl'] += (
                b'{"_id": {"$oid": "0123456789abcdef01234567"},'
                b' "user_id": "x"}\n')
        path = self.changed_copy(bad_document, 'bad-document.tar')
        self.assertRefused(path, '--slug', new_slug('bad'),
                           message='audit_logs.jsonl, line \\d+, is a '
                           'document its collection\'s rules refuse')
        self.assertRefused(path, '--replace', message='audit_logs.jsonl')

    def test_a_failure_after_the_rows_are_loaded_leaves_nothing(self):
        # A user the database refuses: found once the tenant was made and
        # its rows loaded, in the same transaction.
        def bad_user(members):
            users = members['users.jsonl'].decode().splitlines()
            user = json.loads(users[0])
            user.update(id=random_uuid(), email='second@example.test',
                        role='owner')
            users.append(json.dumps(user))
            members['users.jsonl'] = ('\n'.join(users) + '\n').encode()
        path = self.changed_copy(bad_user, 'bad-user.tar')
        self.assertRefused(path, '--slug', new_slug('bad'),
                           message='users_role_check')
        self.assertRefused(path, '--replace', message='users_role_check')

    def test_a_mongodb_failure_leaves_no_tenant_and_no_collections(self):
        # An audit entry MongoDB cannot store (over its 16 MiB document
        # size), after a chat message it takes: the collections are made
        # and one filled before it fails.
        def huge_entry(members):
            members['chat_messages.jsonl'] = json.dumps({
                '_id': {'$oid': os.urandom(12).hex()},
                'conversation_id': random_uuid(), 'role': 'user',
                'content': 'fits',
                'timestamp': {'$date': {'$numberLong': '1764876000000'}},
            }).encode() + b'\n'
            members['audit_logs.jsonl'] += json.dumps({
                '_id': {'$oid': os.urandom(12).hex()},
                'user_id': random_uuid(), 'action': 'create',
                'resource_type': 'agent',
                'changes': {'before': None, 'after': {'x': 'x' * (17 << 20)}},
                'timestamp': {'$date': {'$numberLong': '1764876000000'}},
            }).encode() + b'\n'
        path = self.changed_copy(huge_entry, 'huge.tar')
        proc = self.assertRefused(path, '--slug', new_slug('huge'),
                                  message='too large')
        self.assertIn('nothing was changed', proc.stderr)

    def test_a_replace_that_mongodb_fails_is_finished_by_running_again(self):
        t = Tenant(self.stack, 'again')
        t.call('POST', '/api/v1/agents', expect=201,
               json={'name': 'a', 'role': 'r', 'goal': 'g'})
        t.wait_outbox_empty()
        good = self.backup(t.slug)
        before = snapshot(t)

        def huge_entry(members):
            members['audit_logs.jsonl'] += json.dumps({
                '_id': {'$oid': os.urandom(12).hex()},
                'user_id': t.id, 'action': 'create', 'resource_type': 'x',
                'changes': {'after': {'x': 'x' * (17 << 20)}},
                'timestamp': {'$date': {'$numberLong': '1764876000000'}},
            }).encode() + b'\n'
        huge = os.path.join(self.dir, 'again-huge.tar')
        rewrite_archive(good, huge, huge_entry)

        proc = self.restore(huge, '--replace', code=1)
        self.assertIn('PostgreSQL holds the archive\'s data', proc.stderr)
        self.assertIn('Run the same command again', proc.stderr)
        self.assertEqual(self.stack.psql_value(
            "SELECT is_active FROM public.tenants WHERE id = :'id'",
            id=t.id), 'f')
        self.assertEqual(t.login(t.email, PASSWORD).status, 404)

        self.restore(good, '--replace')
        t.token = self.stack.login(t.slug, email=t.email)
        after = snapshot(t)
        after['tenant'].pop('updated_at')
        before['tenant'].pop('updated_at')
        self.assertEqual(after, before)

    def test_credentials_of_another_master_key_are_refused(self):
        key = os.path.join(self.dir, 'other.key')
        proc = self.crewctl('keys', 'create', '--file', key)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        conf = os.path.join(self.dir, 'other.conf')
        with open(self.stack.conf_path) as f:
            text = f.read()
        text = re.sub(r'(?m)^master_key_file = .*$',
                      'master_key_file = "%s"' % key, text)
        with open(conf, 'w') as f:
            f.write(text)

        before = self.platform_state()
        proc = self.crewctl('tenant', 'restore', self.archive, '--slug',
                            new_slug('key'), conf=conf)
        self.assertEqual(proc.returncode, 1, proc.stdout)
        self.assertIn('do not open with this installation', proc.stderr)
        self.assertIn('--without-credentials', proc.stderr)
        self.assertEqual(self.platform_state(), before)

        slug = new_slug('nokey')
        proc = self.crewctl('tenant', 'restore', self.archive, '--slug',
                            slug, '--without-credentials', conf=conf)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn('1 LLM provider credential(s) left out', proc.stdout)
        token = self.stack.login(slug, email=self.tenant.email)
        providers = self.stack.request('GET', '/api/v1/llm-providers',
                                       host=slug, token=token).json()
        self.assertEqual([p['has_credentials'] for p in providers['items']],
                         [False])

    def test_a_deleted_tenant_comes_back_under_a_new_slug(self):
        gone = Tenant(self.stack, 'gone')
        gone.call('POST', '/api/v1/agents', expect=201,
                  json={'name': 'survivor', 'role': 'r', 'goal': 'g'})
        path = self.backup(gone.slug)
        self.stack.crewctl('tenant', 'delete', gone.slug, '--yes')
        self.assertRefused(path, '--replace',
                           message='no tenant has the archive\'s id')
        slug = new_slug('back')
        self.restore(path, '--slug', slug)
        token = self.stack.login(slug, email=gone.email)
        agents = self.stack.request('GET', '/api/v1/agents', host=slug,
                                    token=token).json()['items']
        self.assertEqual([a['name'] for a in agents], ['survivor'])

    def test_a_failed_backup_leaves_no_file(self):
        path = os.path.join(self.dir, 'none.tar')
        proc = self.crewctl('tenant', 'backup', 'no-such-tenant', path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn('no such tenant', proc.stderr)
        self.assertEqual([n for n in os.listdir(self.dir)
                          if n.startswith('none.tar')
                          or n.startswith('.crewd-backup-')], [])

    def test_pg_dump_is_looked_for_where_pg_bindir_says(self):
        empty = tempfile.mkdtemp(dir=self.dir)
        conf = os.path.join(self.dir, 'bindir.conf')
        with open(self.stack.conf_path) as f:
            text = f.read()
        with open(conf, 'w') as f:
            f.write(text + 'pg_bindir = "%s"\n' % empty)
        path = os.path.join(self.dir, 'bindir.tar')
        proc = self.crewctl('tenant', 'backup', self.tenant.slug, path,
                            conf=conf)
        self.assertEqual(proc.returncode, 1)
        self.assertIn('no pg_dump in pg_bindir (%s)' % empty, proc.stderr)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + '.tmp'))

        bindir = os.path.dirname(self.stack.tools['psql'])
        with open(conf, 'w') as f:
            f.write(text + 'pg_bindir = "%s"\n' % bindir)
        proc = self.crewctl('tenant', 'backup', self.tenant.slug, path,
                            conf=conf)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_a_backup_replaces_a_file_and_sets_mode_0600(self):
        path = os.path.join(self.dir, 'loose.tar')
        with open(path, 'w') as f:
            f.write('old')
        os.chmod(path, 0o644)
        self.backup(self.tenant.slug, 'loose.tar')
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with tarfile.open(path) as tar:
            self.assertIn('manifest.json', tar.getnames())


if __name__ == '__main__':
    crewtest.main()
