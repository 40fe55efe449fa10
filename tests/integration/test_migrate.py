"""crewctl migrate across many tenant schemas: apply, skip, parallel jobs,
a failure on one tenant, resume, roll back, subsets and waves, status,
and drift against tenant_template.

The migrations under test come from a folder (--source): the ones in
sql/migrations/ plus one or two written here, so a test can add a column
everywhere, or a migration that fails on exactly one tenant."""

import os
import re
import shutil
import tempfile
import uuid

import crewtest
from crewtest import StackTestCase
from stack import SRCDIR

MIGRATIONS = os.path.join(SRCDIR, 'sql', 'migrations')
TENANTS = 200


def newest_shipped():
    return max(int(name[:4]) for name in os.listdir(MIGRATIONS)
               if name.endswith('.up.sql'))


class MigrateTestCase(StackTestCase):
    stack_options = {'mongo': False}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = newest_shipped()
        cls.source = tempfile.mkdtemp(prefix='crewd-migrations-')
        for name in os.listdir(MIGRATIONS):
            shutil.copy(os.path.join(MIGRATIONS, name), cls.source)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.source, ignore_errors=True)
        super().tearDownClass()

    # -- helpers ---------------------------------------------------------

    def add_migration(self, version, name, up, down):
        base = os.path.join(self.source, '%04d_%s' % (version, name))
        with open(base + '.up.sql', 'w') as f:
            f.write(up)
        with open(base + '.down.sql', 'w') as f:
            f.write(down)

    def migrate(self, *args, check=True):
        return self.stack.crewctl('migrate', '--source', self.source,
                                  *args, check=check)

    def make_tenants(self, count):
        """count tenants made the way sign-up makes them (the database's
        crewd_create_tenant), without the password hashing."""
        slugs = ['m%03d-%s' % (i, uuid.uuid4().hex[:6])
                 for i in range(count)]
        values = ', '.join(
            "('%s'::uuid, 'Tenant %s', '%s', 'tenant_%s')" % (
                uuid.uuid4(), slug, slug, os.urandom(8).hex())
            for slug in slugs)
        self.stack.psql(
            'SELECT public.crewd_create_tenant(i, n, s, d) FROM (VALUES %s)'
            ' v(i, n, s, d)' % values)
        return slugs

    def versions(self):
        """{version: number of tenant schemas} and the template's."""
        rows = self.stack.psql(
            'SELECT schema_name, version FROM public.crewd_schema_versions()')
        counts, template = {}, None
        for schema, version in rows:
            if schema == 'tenant_template':
                template = int(version)
            else:
                counts[int(version)] = counts.get(int(version), 0) + 1
        return counts, template

    def schema_of(self, slug):
        return self.stack.psql_value(
            "SELECT db_schema FROM public.tenants WHERE slug = :'s'", s=slug)

    def has_column(self, schema, table, column):
        return self.stack.psql_value(
            "SELECT count(*) FROM information_schema.columns WHERE"
            " table_schema = :'s' AND table_name = :'t' AND"
            " column_name = :'c'", s=schema, t=table, c=column) == '1'


class MigrationRolloutTest(MigrateTestCase):
    """One rollout, step by step (the tests run in the order of their
    names, each starting where the one before left the database)."""

    def test_01_a_new_tenant_and_the_template_do_not_drift(self):
        self.stack.new_tenant('fresh')
        proc = self.stack.crewctl('migrate')
        self.assertIn('already there', proc.stdout)
        check = self.stack.crewctl('migrate', 'check')
        self.assertRegex(check.stdout, r'checked against tenant_template, '
                                       r'0 with drift')

    def test_02_a_column_added_across_200_tenants_with_4_jobs(self):
        self.slugs = self.make_tenants(TENANTS)
        type(self).slugs = self.slugs
        self.add_migration(self.base + 1, 'agents_notes',
                           'ALTER TABLE agents ADD COLUMN notes text;\n',
                           'ALTER TABLE agents DROP COLUMN notes;\n')
        proc = self.migrate('--jobs', '4')
        counts, template = self.versions()
        self.assertEqual(template, self.base + 1)
        self.assertEqual(set(counts), {self.base + 1}, counts)
        self.assertGreaterEqual(counts[self.base + 1], TENANTS + 1)
        self.assertRegex(proc.stdout, r'%d schema\(s\) migrated to version '
                         r'%d' % (counts[self.base + 1], self.base + 1))
        for slug in self.slugs[:3] + self.slugs[-3:]:
            self.assertTrue(self.has_column(self.schema_of(slug), 'agents',
                                            'notes'))
        # A tenant signed up now is built at the template's version.
        fresh = self.stack.new_tenant('after')
        self.assertTrue(self.has_column(self.schema_of(fresh.slug),
                                        'agents', 'notes'))
        check = self.stack.crewctl('migrate', 'check')
        self.assertIn(', 0 with drift', check.stdout)

    def test_03_a_second_run_does_no_work(self):
        samples = [self.schema_of(slug) for slug in self.slugs[::50]]

        def stamps():
            return [self.stack.psql_value(
                'SELECT max(applied_at)::text FROM :"s".schema_migrations',
                s=schema) for schema in samples]

        before = stamps()
        proc = self.migrate('--jobs', '4')
        self.assertRegex(proc.stdout, r'(?m)^0 schema\(s\) migrated to version '
                         r'%d, \d+ already there' % (self.base + 1))
        self.assertEqual(stamps(), before)

    def test_04_a_failure_on_one_tenant_leaves_the_others_done(self):
        poisoned = self.slugs[100]
        schema = self.schema_of(poisoned)
        self.stack.psql(
            'INSERT INTO :"s".agents (tenant_id, name, role, goal)'
            " SELECT id, 'poison', 'r', 'g' FROM public.tenants"
            " WHERE slug = :'slug'", s=schema, slug=poisoned)
        self.add_migration(
            self.base + 2, 'agents_name_check',
            'CREATE TABLE agent_labels (id uuid PRIMARY KEY);\n'
            'ALTER TABLE agents ADD CONSTRAINT agents_name_not_poison'
            " CHECK (name <> 'poison');\n",
            'ALTER TABLE agents DROP CONSTRAINT agents_name_not_poison;\n'
            'DROP TABLE agent_labels;\n')
        proc = self.migrate('--jobs', '3', check=False)
        self.assertEqual(proc.returncode, 1, proc)
        self.assertIn('1 schema(s) failed to migrate', proc.stderr)
        self.assertRegex(proc.stderr, r'%s \(%s\): .*agents_name_not_poison'
                         % (re.escape(poisoned), schema))
        counts, _ = self.versions()
        self.assertEqual(counts.get(self.base + 1), 1, counts)
        self.assertEqual(self.stack.psql_value(
            "SELECT version FROM public.crewd_schema_versions()"
            " WHERE schema_name = :'s'", s=schema), str(self.base + 1))
        # Untouched: the migration's first statement is not there either.
        self.assertIsNone(self.stack.psql_value(
            "SELECT to_regclass(:'t')", t=schema + '.agent_labels'))
        self.assertIsNotNone(self.stack.psql_value(
            "SELECT to_regclass(:'t')",
            t=self.schema_of(self.slugs[101]) + '.agent_labels'))

    def test_05_a_new_run_continues_where_the_last_stopped(self):
        schema = self.schema_of(self.slugs[100])
        self.stack.psql("UPDATE :\"s\".agents SET name = 'cured'"
                        " WHERE name = 'poison'", s=schema)
        proc = self.migrate('--jobs', '2')
        self.assertRegex(proc.stdout, r'(?m)^1 schema\(s\) migrated to version '
                         r'%d' % (self.base + 2))
        counts, template = self.versions()
        self.assertEqual(set(counts), {self.base + 2})
        self.assertEqual(template, self.base + 2)
        # A table a migration adds is the tenant role's to use, by the
        # schema's default privileges, and no other tenant's.
        other = self.schema_of(self.slugs[101])
        self.assertEqual(self.stack.psql(
            "SELECT has_table_privilege(:'r', :'t', 'SELECT, INSERT'),"
            " has_table_privilege(:'other', :'t', 'SELECT')",
            r=schema, other=other, t=schema + '.agent_labels'),
            [('t', 'f')])

    def test_06_status_counts_the_schemas_at_each_version(self):
        proc = self.stack.crewctl('migrate', 'status')
        counts, _ = self.versions()
        self.assertRegex(proc.stdout, r'\n\s+%d\s+%d  \(and tenant_template\)'
                         % (self.base + 2, counts[self.base + 2]))

    def test_07_tenants_and_batch_roll_out_to_a_subset(self):
        first, second = self.slugs[0], self.slugs[1]
        proc = self.migrate('--to', str(self.base + 1), '--tenants',
                            '%s,%s' % (first, second))
        self.assertRegex(proc.stdout, r'(?m)^2 schema\(s\) migrated')
        self.assertTrue(self.has_column(self.schema_of(first), 'agents',
                                        'notes'))
        self.assertIsNone(self.stack.psql_value(
            "SELECT to_regclass(:'t')",
            t=self.schema_of(first) + '.agent_labels'))
        self.assertIsNotNone(self.stack.psql_value(
            "SELECT to_regclass(:'t')",
            t=self.schema_of(self.slugs[2]) + '.agent_labels'))

        proc = self.migrate('--to', str(self.base + 1), '--batch', '10')
        self.assertRegex(proc.stdout, r'(?m)^10 schema\(s\) migrated .*'
                         r'\(batch of 10\)')
        counts, _ = self.versions()
        self.assertEqual(counts.get(self.base + 1), 12, counts)

        proc = self.migrate('--tenants', 'no-such-tenant,%s' % first,
                            check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn('no such tenant: no-such-tenant', proc.stderr)
        counts, _ = self.versions()
        self.assertEqual(counts.get(self.base + 1), 12, counts)

    def test_08_to_rolls_every_schema_back(self):
        proc = self.migrate('--to', str(self.base), '--jobs', '4')
        self.assertEqual(proc.returncode, 0, proc)
        counts, template = self.versions()
        self.assertEqual(set(counts), {self.base})
        self.assertEqual(template, self.base)
        schema = self.schema_of(self.slugs[7])
        self.assertFalse(self.has_column(schema, 'agents', 'notes'))
        self.assertIsNone(self.stack.psql_value(
            "SELECT to_regclass(:'t')", t=schema + '.agent_labels'))
        # A plain run afterwards (the migrations crewctl carries) brings
        # nothing back: the rolled-back ones live only in the folder.
        plain = self.stack.crewctl('migrate')
        self.assertRegex(plain.stdout, r'(?m)^0 schema\(s\) migrated to '
                         r'version %d' % self.base)
        self.assertEqual(set(self.versions()[0]), {self.base})

        # The rolled-back template builds new tenants without the column.
        fresh = self.stack.new_tenant('rolled')
        self.assertFalse(self.has_column(self.schema_of(fresh.slug),
                                         'agents', 'notes'))
        check = self.stack.crewctl('migrate', 'check')
        self.assertIn(', 0 with drift', check.stdout)

    def test_09_a_hand_made_change_is_reported_as_drift(self):
        schema = self.schema_of(self.slugs[3])
        self.stack.psql('ALTER TABLE :"s".agents ADD COLUMN planted text;'
                        ' DROP INDEX :"s".idx_agents_list;',
                        s=schema)
        check = self.stack.crewctl('migrate', 'check', check=False)
        self.assertEqual(check.returncode, 1, check)
        self.assertIn('%s (%s): extra column agents.planted: text' % (
            self.slugs[3], schema), check.stdout)
        self.assertIn('%s (%s): missing index idx_agents_list' % (
            self.slugs[3], schema), check.stdout)
        self.assertIn(', 1 with drift', check.stdout)


class MigrateOptionsTest(MigrateTestCase):

    def test_bad_options_are_refused(self):
        for args in (('--jobs', '0'), ('--jobs', '65'), ('--batch', 'x'),
                     ('--to', '-1'), ('stray',)):
            with self.subTest(args=args):
                proc = self.stack.crewctl('migrate', *args, check=False)
                self.assertEqual(proc.returncode, 2, proc)

    def test_to_an_unknown_version_is_refused(self):
        proc = self.stack.crewctl('migrate', '--to', '999', check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertIn('--to 999: no such migration', proc.stderr)

    def test_a_source_folder_without_a_down_part_is_refused(self):
        folder = tempfile.mkdtemp(prefix='crewd-migrations-')
        try:
            with open(os.path.join(folder, '0001_init.up.sql'), 'w') as f:
                f.write('SELECT 1;\n')
            proc = self.stack.crewctl('migrate', '--source', folder,
                                      check=False)
            self.assertEqual(proc.returncode, 1)
            self.assertIn('0001_init.down.sql', proc.stderr)
        finally:
            shutil.rmtree(folder)


if __name__ == '__main__':
    crewtest.main()
