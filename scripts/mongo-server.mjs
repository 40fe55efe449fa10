// The MongoDB-protocol server of the development stack and the tests:
// CongoServer of @push.rocks/smartmongo 2.2.0 (scripts/mongo-server-install
// puts it in place), in memory, on loopback.
//
//   node scripts/mongo-server.mjs --dir DIR --port PORT [--host 127.0.0.1]
//
// DIR is the folder the installer printed.  Prints one line when it
// accepts connections and runs until SIGTERM or SIGINT; its data dies with
// it.  It is not MongoDB: validators are never enforced, indexes never
// expire or refuse anything (docs/mongodb.md).  Two small changes make it
// answer like MongoDB where crewd and its tests read back what they set:
//
//  * "create" and "collMod" keep the collection's validator and
//    validation options, and listCollections reports them as "options"
//    (CongoServer accepts them and forgets them);
//  * "collMod" with {index: {name, expireAfterSeconds}} changes that TTL
//    (CongoServer acknowledges and does nothing): the index is dropped
//    and made again with the new value.
//
// crewd uses one single-threaded client per process, which does not poll
// the server; the topologyVersion of its hello replies is left alone.
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

function usage(message) {
    process.stderr.write(`mongo-server: ${message}\n` +
        'usage: node scripts/mongo-server.mjs --dir DIR --port PORT ' +
        '[--host HOST]\n');
    process.exit(2);
}

function parseArguments(argv) {
    const options = { host: '127.0.0.1' };

    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i];
        const value = argv[i + 1];

        if (value === undefined)
            usage(`${name} needs a value`);
        if (name === '--dir')
            options.dir = value;
        else if (name === '--port')
            options.port = Number(value);
        else if (name === '--host')
            options.host = value;
        else
            usage(`unknown option ${name}`);
    }
    if (!options.dir)
        usage('--dir is required');
    if (!Number.isInteger(options.port) || options.port < 1 ||
        options.port > 65535)
        usage('--port must be a TCP port');
    if (!['127.0.0.1', '::1', 'localhost'].includes(options.host))
        usage('--host must be a loopback address');
    return options;
}

async function load(dir, relative) {
    const file = path.join(dir, 'smartmongo', 'dist_ts', 'congodb', relative);
    return import(pathToFileURL(file).href);
}

// The options a "create" command sets that listCollections reports.
const COLLECTION_OPTIONS = ['validator', 'validationLevel',
    'validationAction', 'capped', 'size', 'max', 'expireAfterSeconds',
    'timeseries', 'clusteredIndex', 'collation'];

function keepCollectionOptions(AdminHandler, IndexHandler) {
    const proto = AdminHandler.prototype;
    const options = new Map();     // "db.collection" -> options document
    const original = {
        create: proto.handleCreate,
        list: proto.handleListCollections,
        collMod: proto.handleCollMod,
        drop: proto.handleDrop,
        dropDatabase: proto.handleDropDatabase,
    };

    proto.handleCreate = async function (context) {
        const reply = await original.create.call(this, context);
        if (reply.ok === 1) {
            const kept = {};
            for (const name of COLLECTION_OPTIONS)
                if (context.command[name] !== undefined)
                    kept[name] = context.command[name];
            options.set(`${context.database}.${context.command.create}`,
                kept);
        }
        return reply;
    };

    proto.handleListCollections = async function (context) {
        const reply = await original.list.call(this, context);
        if (reply.ok === 1 && !context.command.nameOnly)
            for (const entry of reply.cursor.firstBatch)
                entry.options = options.get(
                    `${context.database}.${entry.name}`) ?? {};
        return reply;
    };

    proto.handleCollMod = async function (context) {
        const { command, database, storage } = context;
        const key = `${database}.${command.collMod}`;

        if (!await storage.collectionExists(database, command.collMod))
            return { ok: 0, code: 26, codeName: 'NamespaceNotFound',
                     errmsg: `ns does not exist: ${key}` };

        const kept = options.get(key) ?? {};
        for (const name of ['validator', 'validationLevel',
            'validationAction'])
            if (command[name] !== undefined)
                kept[name] = command[name];
        options.set(key, kept);

        if (command.index && command.index.expireAfterSeconds !== undefined)
            return changeTtl(context, command.collMod, command.index);
        return original.collMod.call(this, context);
    };

    async function changeTtl(context, collection, change) {
        const indexes = new IndexHandler();
        const listed = await indexes.handle({ ...context,
            command: { listIndexes: collection } });
        const found = (listed.cursor?.firstBatch ?? []).find((index) =>
            index.name === change.name ||
            JSON.stringify(index.key) === JSON.stringify(change.keyPattern));

        if (!found)
            return { ok: 0, code: 27, codeName: 'IndexNotFound',
                     errmsg: 'cannot find index' };
        await indexes.handle({ ...context,
            command: { dropIndexes: collection, index: found.name } });
        await indexes.handle({ ...context, command: {
            createIndexes: collection,
            indexes: [{ key: found.key, name: found.name,
                        expireAfterSeconds: change.expireAfterSeconds }] } });
        return { ok: 1,
                 expireAfterSeconds_old: found.expireAfterSeconds,
                 expireAfterSeconds_new: change.expireAfterSeconds };
    }

    proto.handleDrop = async function (context) {
        options.delete(`${context.database}.${context.command.drop}`);
        return original.drop.call(this, context);
    };

    proto.handleDropDatabase = async function (context) {
        for (const key of [...options.keys()])
            if (key.startsWith(`${context.database}.`))
                options.delete(key);
        return original.dropDatabase.call(this, context);
    };
}

const options = parseArguments(process.argv.slice(2));

// The name ps and scripts/dev see (/proc/PID/comm).
process.title = 'mongo-server';
const congo = await load(options.dir, 'index.js');
const handlers = await load(options.dir, 'server/handlers/index.js');

keepCollectionOptions(handlers.AdminHandler, handlers.IndexHandler);

const server = new congo.CongoServer({
    host: options.host, port: options.port, storage: 'memory',
});

// Memory storage has nothing to save: stop at once.  (CongoServer's own
// stop() takes seconds, which makes restarts in the tests slow.)
for (const signal of ['SIGTERM', 'SIGINT'])
    process.on(signal, () => process.exit(0));

try {
    await server.start();
} catch (error) {
    process.stderr.write(`mongo-server: could not listen on ` +
        `${options.host}:${options.port}: ${error.message}\n`);
    process.exit(1);
}
process.stdout.write(`mongo-server: CongoServer listening on ` +
    `${options.host}:${options.port} (memory storage)\n`);
